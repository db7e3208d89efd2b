"""Surrogate estimation: the wa-hls4ml reader and split, the dataset format, the graph builder, the
shipped checkpoint through the CLI, and the HTTP service on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import uvicorn
from hls4ml.backends import get_backend
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from qfx.cli import main
from qfx.export import to_onnx
from qfx.hls.graph import load
from qfx.models import digits_mlp
from qfx.surrogate.dataset import TARGETS, is_test, read_parquet, read_wa_csv, write_parquet
from qfx.surrogate.estimate import estimate, estimators
from qfx.surrogate.estimator import Scaler
from qfx.surrogate.graph import GLOBAL_FEATURES, LAYER_TYPES, NUMERIC, build, from_onnx, layers_from_onnx, legal_reuse
from qfx.surrogate.service import MAX_UPLOAD, app
from qfx.train import calibrate

WA_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "wa-hls4ml" / "dense_3layer_vitis2023.2.csv"
needs_wa = pytest.mark.skipif(not WA_CSV.is_file(), reason=f"wa-hls4ml data not at {WA_CSV} (../shared absent)")


@pytest.fixture(scope="module")
def wa() -> pd.DataFrame:
    return read_wa_csv(WA_CSV)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = digits_mlp(6, k_hot=2)
    calibrate(model, torch.rand(64, 64))
    path = tmp_path_factory.mktemp("onnx") / "mlp.onnx"
    to_onnx(model.double().eval(), torch.rand(1, 64, dtype=torch.float64), path)
    return path


@needs_wa
def test_wa_csv_reads_every_successful_report(wa: pd.DataFrame) -> None:
    assert len(wa) == 10001 and wa["model_id"].nunique() == 2338
    assert set(wa["tool"]) == {"vitis_hls"} and set(wa["clock_ns"]) == {5.0}
    assert (wa[list(TARGETS)] >= 0).all().all()


@needs_wa
def test_test_split_holds_unseen_architectures_only(wa: pd.DataFrame) -> None:
    test = is_test(wa["model_id"])
    assert test.sum() == 1028
    assert not set(wa["model_id"][test]) & set(wa["model_id"][~test])


def test_parquet_dataset_round_trips_with_its_schema_version(tmp_path: Path) -> None:
    df = read_wa_csv_sample(tmp_path)
    write_parquet(df, tmp_path / "d.parquet")
    back = read_parquet(tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(back, df)


def test_parquet_without_the_schema_is_refused(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a qfx surrogate dataset"):
        read_parquet(tmp_path / "other.parquet")


def read_wa_csv_sample(tmp_path: Path) -> pd.DataFrame:
    rows = (
        "model_string,prec,rf,strategy,TargetClockPeriod_hls,LUT_hls,FF_hls,DSP_hls,BRAM_18K_hls,"
        "WorstLatency_hls,IntervalMax_hls,hls_synth_success\n"
        "16-32-8-4,8,1024,resource,5.0,3000,2000,1,2.5,1100,1100,TRUE\n"
        "16-32-8-4,8,2048,resource,5.0,2900,2100,1,2,2100,2100,FALSE\n"
    )
    (tmp_path / "s.csv").write_text(rows)
    return read_wa_csv(tmp_path / "s.csv")


def test_graph_of_a_qfx_export_has_its_layers_and_k_hot_weights(onnx_model: Path) -> None:
    graph = from_onnx(load(onnx_model))
    kinds = [LAYER_TYPES[int(np.argmax(row[: len(LAYER_TYPES)]))] for row in graph.nodes]
    assert kinds == ["dense", "relu", "dense", "relu", "dense"]
    k_hot = graph.nodes[:, len(LAYER_TYPES) + 6]
    assert k_hot.tolist() == [2, 0, 2, 0, 2]


def test_the_resource_strategy_uses_the_reuse_factor_hls4ml_builds() -> None:
    layer = {"type": "dense", "n_in": 104, "n_out": 48, "weight_bits": 8, "act_bits": 8}
    reuse = len(LAYER_TYPES) + NUMERIC.index("reuse")
    resource, latency = build([layer], "resource", reuse=1024), build([layer], "latency", reuse=1024)
    assert 2 ** resource.nodes[0, reuse] - 1 == pytest.approx(832, abs=0.01)  # hls4ml: "Using ReuseFactor=832"
    assert 2 ** latency.nodes[0, reuse] - 1 == pytest.approx(1024, abs=0.01)


@pytest.mark.parametrize(("n_in", "n_out", "reuse"), [(104, 48, 1024), (24, 104, 4093), (7, 13, 50), (128, 128, 1)])
def test_legal_reuse_agrees_with_hls4mls_own_search(n_in: int, n_out: int, reuse: int) -> None:
    backend = get_backend("Vitis")
    expected = backend.get_closest_reuse_factor(backend.get_valid_reuse_factors(n_in, n_out), reuse)
    assert legal_reuse(n_in, n_out, reuse) == expected


def test_a_feature_constant_in_training_scales_by_one_not_by_zero() -> None:
    graphs = [build([{"type": "dense", "n_in": 8, "n_out": n}], "resource", reuse=64) for n in (4, 8, 16)]
    scaler = Scaler.fit(graphs, np.ones((3, len(TARGETS))))
    assert scaler.glob_std[GLOBAL_FEATURES.index("resource")] == 1.0
    assert scaler.glob_std[GLOBAL_FEATURES.index("macs")] < 1.0


def test_table_based_activations_of_an_onnx_model_are_their_own_layer_type() -> None:
    w = onnx.numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["h"]), onnx.helper.make_node("Sigmoid", ["h"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        [w],
    )
    layers = layers_from_onnx(onnx.helper.make_model(graph))
    assert [(layer["type"], layer["n_out"]) for layer in layers] == [("dense", 3), ("activation", 3)]


def test_a_malformed_layer_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="layer 1 \\(dense\\): n_out must be a positive integer"):
        build([{"type": "dense", "n_in": 4, "n_out": 8}, {"type": "dense", "n_in": 8, "n_out": 0}])


def test_predictions_stay_in_the_training_range_and_flag_extrapolation() -> None:
    huge = [{"type": "dense", "n_in": 4096, "n_out": 4096, "weight_bits": 16, "act_bits": 16}] * 6
    result = estimate(build(huge, "latency", reuse=1), "alveo-u250")
    est, _ = estimators()
    top = np.expm1(est["transformer"].scaler.y_max)
    assert all(result[t] <= top[i] + 0.1 for i, t in enumerate(TARGETS))
    assert result["extrapolation"] and "global macs" in result["outside_training_range"]


def test_estimate_cli_prints_json_with_utilization(onnx_model: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["estimate", str(onnx_model), "--board", "pynqz2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["board"] == "pynqz2" and {"lut", "ff", "dsp", "bram", "latency_cycles", "ii"} <= r.keys()
    assert r["utilization_percent"]["lut"] == pytest.approx(100 * r["lut"] / 53200, abs=0.01)


def test_estimate_cli_refuses_a_malformed_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    assert main(["estimate", str(tmp_path / "bad.onnx")]) == 2
    assert "not a valid ONNX model" in capsys.readouterr().err


def test_estimate_csv_adds_the_predicted_columns(tmp_path: Path) -> None:
    read_wa_csv_sample(tmp_path)
    assert main(["estimate-csv", str(tmp_path / "s.csv"), str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 2 and {"LUT_pred", "FF_pred", "DSP_pred", "BRAM_18K_pred"} <= set(out.columns)
    assert {"WorstLatency_pred", "IntervalMax_pred"} <= set(out.columns) and (out["LUT_pred"] > 0).all()


@pytest.fixture(scope="module")
def server() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    srv.should_exit = True
    thread.join(timeout=5)


def test_health_and_boards_answer(server: str) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    boards = httpx.get(f"{server}/v1/boards").json()
    assert boards["ultra96v2"]["lut"] == 70560 and boards["ultra96v2"]["bram"] == 432
    assert httpx.get(f"{server}/openapi.json").json()["paths"].keys() >= {"/v1/estimate", "/v1/boards"}


def test_onnx_upload_is_estimated(server: str, onnx_model: Path) -> None:
    r = httpx.post(f"{server}/v1/estimate", files={"model": onnx_model.read_bytes()}, data={"board": "zcu104"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["board"] == "zcu104" and body["lut"] > 0 and isinstance(body["fits"], bool)


def test_json_layers_are_estimated(server: str) -> None:
    layers = [{"type": "dense", "n_in": 16, "n_out": 64, "weight_bits": 8, "act_bits": 8}]
    r = httpx.post(f"{server}/v1/estimate", json={"layers": layers, "reuse": 2048, "strategy": "resource"})
    assert r.status_code == 200 and r.json()["ii"] > 0


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"files": {"model": b"\x00garbage"}}, 422, "not a valid ONNX model"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "malformed JSON"),
        ({"json": {"layers": [{"type": "lstm", "n_in": 1, "n_out": 1}]}}, 422, "layer 0: type 'lstm'"),
        ({"json": {"layers": [{"type": "relu", "n_in": 1, "n_out": 1}], "board": "nope"}}, 422, "nope"),
        ({"files": {"model": b"0" * (MAX_UPLOAD + 1)}}, 413, "over the"),
    ],
    ids=["malformed_onnx", "malformed_json", "unknown_layer", "unknown_board", "oversized"],
)
def test_bad_requests_get_a_status_and_a_reason(server: str, kwargs: dict, status: int, reason: str) -> None:
    r = httpx.post(f"{server}/v1/estimate", timeout=30, **kwargs)
    assert r.status_code == status and reason in r.json()["detail"]


def test_fifty_concurrent_requests_are_all_answered(server: str) -> None:
    layers = [{"type": "dense", "n_in": 16, "n_out": n, "weight_bits": 8, "act_bits": 8} for n in (8, 16)]

    def call(i: int) -> int:
        return httpx.post(f"{server}/v1/estimate", json={"layers": layers, "reuse": 1024 + i}, timeout=60).status_code

    with ThreadPoolExecutor(50) as pool:
        assert list(pool.map(call, range(50))) == [200] * 50


def _upload(browser: webdriver.Chrome, server: str, path: Path, board: str) -> None:
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: len(Select(b.find_element(By.ID, "board")).options) > 1)
    Select(browser.find_element(By.ID, "board")).select_by_value(board)
    browser.find_element(By.ID, "model").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # done when the bars' summary or an error message appears
    wait.until(lambda b: b.find_elements(By.ID, "summary") or b.find_element(By.ID, "error").text)


def test_the_page_draws_the_estimate_as_bars_against_the_board(
    browser: webdriver.Chrome, server: str, onnx_model: Path, tmp_path: Path
) -> None:
    _upload(browser, server, onnx_model, "ultra96v2")
    api = httpx.post(f"{server}/v1/estimate", files={"model": onnx_model.read_bytes()}, data={"board": "ultra96v2"})
    expected = api.json()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result .row")
    assert [r.get_attribute("data-resource") for r in rows] == ["lut", "ff", "dsp", "bram"]
    for row in rows:
        key = row.get_attribute("data-resource")
        fill = row.find_element(By.CSS_SELECTOR, ".fill")
        bar = row.find_element(By.CSS_SELECTOR, ".bar")
        drawn = 100 * fill.size["width"] / bar.size["width"]
        assert drawn == pytest.approx(min(expected["utilization_percent"][key], 100), abs=1.0)
        assert f"({expected['utilization_percent'][key]:.1f}%)" in row.text
    assert "on ultra96v2" in browser.find_element(By.ID, "summary").text
    assert browser.save_screenshot(str(tmp_path / "page.png"))


def test_the_page_shows_why_a_model_is_refused(browser: webdriver.Chrome, server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    _upload(browser, server, bad, "zcu104")
    assert "not a valid ONNX model" in browser.find_element(By.ID, "error").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#result .row")
