"""`qfx synth` with the open flow: Yosys's figures read from `stat -json` and `ltp`, each layer attributed,
the multiplier style costing DSPs that distributed arithmetic does not, and failures leaving the old report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from qfx.cli import main
from qfx.hls.project import Project
from qfx.hls.synth import report, yosys
from qfx.hls.synth.layers import layers

from .conversion_models import hand_built_qonnx, quant, save_model

DATA = Path(__file__).parent / "data" / "yosys"
FAST = ["--no-check"]


def dense_16x8(path: Path) -> None:
    """One 8-bit 16x8 dense layer written with onnx.helper (the issue's DSP yardstick)."""
    rng = np.random.default_rng(3)
    nodes: list = []
    inits: list = []
    w = (rng.integers(-127, 128, (16, 8)) / 64).astype(np.float32)
    inits.append(numpy_helper.from_array(w, "w"))
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    wq = quant("wq", "w", 2.0**-6, 8, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [x, wq], ["y"], name="dense"))
    save_model(str(path), nodes, inits, 16, 8)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 16x8 dense layer converted with each RTL style, and the hand-built MLP."""
    root = tmp_path_factory.mktemp("synth")
    dense_16x8(root / "dense.onnx")
    hand_built_qonnx(str(root / "mlp.onnx"))
    out = {}
    for name, model, style in (("da", "dense", "da"), ("mult", "dense", "mult"), ("mlp", "mlp", "da")):
        assert main(["convert", str(root / f"{model}.onnx"), "-o", str(root / name), "--rtl", style, *FAST]) == 0
        out[name] = root / name
    return out


def test_stat_json_counts_luts_inverters_registers_and_carries() -> None:
    used, uncounted = yosys.parse_stat(json.loads((DATA / "stat_xcup.json").read_text()), "qfx_top")
    assert used == {
        "LUT": 1319 + 609 + 371 + 573 + 147 + 138,
        "FF": 800,
        "DSP": 0,
        "BRAM18": 0,
        "URAM": 0,
        "CARRY": 686,
    }
    assert uncounted == {}  # $scopeinfo, BUFG and MUXF7 use none of the counted resources


def test_cells_of_unknown_types_are_listed_not_counted() -> None:
    stat = {"modules": {"\\top": {"num_cells_by_type": {"LUT3": 2, "RAMB36E2": 1, "GTYE4_CHANNEL": 1}}}}
    used, uncounted = yosys.parse_stat(stat, "top")
    assert used["LUT"] == 2 and used["BRAM18"] == 2 and uncounted == {"GTYE4_CHANNEL": 1}


def test_stat_without_the_top_module_names_the_modules_it_has() -> None:
    with pytest.raises(ValueError, match=r"no module qfx_top \(it has other\)"):
        yosys.parse_stat({"modules": {"\\other": {}}}, "qfx_top")


def test_logic_depth_is_the_length_ltp_reports() -> None:
    assert yosys.parse_ltp((DATA / "ltp.txt").read_text()) == 28


def test_layers_follow_hls4ml_names_and_fold_quantizers_into_the_layer_before(projects: dict[str, Path]) -> None:
    project = Project(projects["mlp"])
    cut = layers(project.graph, project["layers"])
    assert [(layer.name, layer.nodes) for layer in cut] == [
        ("Dense_gemm", ["gemm"]),
        ("relu", ["relu", "hq_node"]),
        ("Dense_matmul", ["matmul"]),
    ]
    hls4ml_names = [layer["name"] for layer in project["layers"]]
    assert all(layer.name in hls4ml_names for layer in cut)


@pytest.fixture(scope="module")
def reports(projects: dict[str, Path]) -> dict[str, dict]:
    """`qfx synth` (Yosys) on the dense layer in both RTL styles."""
    for style in ("mult", "da"):
        assert main(["synth", str(projects[style]), "--tool", "yosys", "--jobs", "2"]) == 0
    return {style: report.load(projects[style]) for style in ("mult", "da")}


@pytest.mark.slow
def test_multiplier_style_uses_dsps_and_distributed_arithmetic_none(reports: dict[str, dict]) -> None:
    mult, da = reports["mult"], reports["da"]
    assert mult["total"]["DSP"] > 0 and da["total"]["DSP"] == 0
    assert mult["tool"] == "yosys" and mult["tool_version"].startswith("0.7") and mult["family"] == "xcup"
    assert mult["style"] == "mult" and da["style"] == "da"


@pytest.mark.slow
def test_report_has_every_schema_key_and_the_layers_hls4ml_named(reports: dict[str, dict], projects) -> None:
    r = reports["da"]
    assert set(report.TOP_KEYS) <= set(r)
    assert [layer["name"] for layer in r["layers"]] == ["Dense_dense"]
    for key in report.RESOURCES:
        assert r["layer_difference"][key] == r["total"][key] - sum(layer[key] for layer in r["layers"])
    assert r["total"]["LUT"] > 0 and r["total"]["logic_depth"] > 0 and r["fits"]
    assert r["latency_cycles"] == Project(projects["da"]).rtl["latency"]
    assert (projects["da"] / "reports" / "index.html").is_file()


@pytest.mark.slow
def test_a_yosys_error_exits_2_with_its_error_line_and_keeps_the_old_report(
    projects: dict[str, Path], reports: dict[str, dict], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(projects["da"], broken)  # with the report the fixture wrote
    before = (broken / "reports" / "synth.json").read_text()
    top = broken / "rtl" / "src" / "qfx_top.v"
    top.write_text(top.read_text().replace("endmodule", "wire oops = ;\nendmodule"))
    capsys.readouterr()
    assert main(["synth", str(broken), "--tool", "yosys", "--jobs", "1"]) == 2  # the layers are not started
    assert "ERROR" in capsys.readouterr().err
    assert (broken / "reports" / "synth.json").read_text() == before
    assert sorted(p.name for p in broken.iterdir() if p.name.startswith(".")) == []


def test_a_project_without_rtl_is_refused_and_gets_no_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert main(["convert", str(tmp_path / "h.onnx"), "-o", str(tmp_path / "p"), "--rtl", "none", *FAST]) == 0
    assert main(["synth", str(tmp_path / "p"), "--tool", "yosys"]) == 2
    assert "no RTL" in capsys.readouterr().err
    assert not (tmp_path / "p" / "reports").exists()


def test_a_run_past_its_time_limit_exits_2(projects: dict[str, Path], tmp_path: Path, capsys) -> None:
    slow = tmp_path / "slow"
    shutil.copytree(projects["da"], slow, ignore=shutil.ignore_patterns("reports"))
    assert main(["synth", str(slow), "--tool", "yosys", "--timeout", "1"]) == 2
    assert "ran past the 1 s limit" in capsys.readouterr().err
    assert not (slow / "reports").exists()


def test_a_folder_that_is_not_a_project_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", str(tmp_path), "--tool", "yosys"]) == 2
    assert "no qfx.json" in capsys.readouterr().err


def test_an_older_report_is_refused_by_qfx_report(projects: dict[str, Path], tmp_path: Path, capsys) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "synth.json").write_text(json.dumps({"schema": 0}))
    assert main(["report", str(tmp_path)]) == 2
    assert "schema 0, expected 1" in capsys.readouterr().err


def test_auto_picks_the_projects_vendor_tool_where_installed_and_yosys_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qfx.hls.synth.synthesize import pick_tool

    monkeypatch.setenv("PATH", str(tmp_path))
    assert pick_tool("auto", "vitis") == "yosys"
    fake = tmp_path / "vitis_hls"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert pick_tool("auto", "vitis") == "vitis"
    assert pick_tool("auto", "vivado") == "yosys"  # a Vivado HLS project needs vivado_hls
