"""Reading wa-hls4ml's JSON records: the schema of the released data set (rule4ml's model_config, hls_config,
string-valued resource and latency reports, merged arrays with null entries and empty reports)."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qfx.cli import main
from qfx.surrogate.dataset import is_test, load, read_wa_json
from qfx.surrogate.graph import from_row


def dense_record(widths: list[int], bits: int = 8, reuse: int = 64, lut: str = "3120") -> dict:
    """One record the way wa-hls4ml's pipeline writes it for a QKeras dense chain."""
    config: list[dict] = [
        {"class_name": "InputLayer", "name": "input_1", "input_shape": [[None, widths[0]]], "reuse_factor": reuse}
    ]
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        config.append(
            {
                "class_name": "QDense",
                "name": f"fc{i}",
                "input_shape": [None, a],
                "output_shape": [None, b],
                "parameters": a * b + b,
                "trainable_parameters": a * b + b,
                "dtype": "float32",
                "reuse_factor": reuse,
            }
        )
        act = "relu" if i < len(widths) - 2 else "softmax"
        config.append(
            {
                "class_name": "Activation",
                "name": f"act{i}",
                "input_shape": [None, b],
                "output_shape": [None, b],
                "activation": act,
                "parameters": 0,
                "reuse_factor": reuse,
            }
        )
    return {
        "meta_data": {"uuid": "0b7d", "model_name": "dense", "artifacts_file": "0b7d.tar.gz"},
        "model_config": config,
        "hls_config": {
            "Model": {
                "Precision": f"ap_fixed<{bits}, 1>",
                "ReuseFactor": reuse,
                "Strategy": "Resource",
                "BramFactor": 1000000000,
                "TraceOutput": False,
            },
            "clock_period": 5,
            "io_type": "io_parallel",
        },
        "resource_report": {"bram": "1.5", "dsp": "0", "ff": "2400", "lut": lut, "uram": "0"},
        "hls_resource_report": {"bram": "2", "dsp": "0", "ff": "2900", "lut": "4100", "uram": "0"},
        "latency_report": {
            "cycles_min": "210",
            "cycles_max": "212",
            "target_clock": "5",
            "estimated_clock": "4.1",
            "interval_min": "200",
            "interval_max": "201",
        },
        "target_part": "xcu250-figd2104-2L-e",
        "vivado_version": "2023.2",
        "hls4ml_version": "0.8.1",
    }


def conv_record() -> dict:
    rec = dense_record([10, 4])
    rec["model_config"] = [
        {"class_name": "InputLayer", "name": "in", "input_shape": [[None, 8, 8, 3]], "reuse_factor": 8192},
        {
            "class_name": "QConv2D",
            "name": "q_conv2d",
            "input_shape": [None, 8, 8, 3],
            "output_shape": [None, 6, 6, 16],
            "parameters": (9 * 3 + 1) * 16,
            "reuse_factor": 27,
        },
        {
            "class_name": "QActivation",
            "name": "q_act",
            "input_shape": [None, 6, 6, 16],
            "output_shape": [None, 6, 6, 16],
            "activation": "quantized_relu(8,0)",
            "reuse_factor": 8192,
        },
        {
            "class_name": "MaxPooling2D",
            "name": "pool",
            "input_shape": [None, 6, 6, 16],
            "output_shape": [None, 3, 3, 16],
            "reuse_factor": 8192,
        },
        {"class_name": "Flatten", "name": "flat", "input_shape": [None, 3, 3, 16], "output_shape": [None, 144]},
        {
            "class_name": "QDense",
            "name": "fc",
            "input_shape": [None, 144],
            "output_shape": [None, 10],
            "parameters": 1450,
            "reuse_factor": 144,
        },
    ]
    rec["hls_config"]["LayerName"] = {"q_conv2d": {"Precision": {"weight": "fixed<6,1>", "result": "auto"}}}
    rec["hls_config"]["io_type"] = "io_stream"
    return rec


def write(tmp_path: Path, content: object, name: str = "records.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def test_a_merged_array_skips_nulls_and_records_without_reports(tmp_path: Path) -> None:
    failed = dense_record([16, 8, 4]) | {"resource_report": {}, "latency_report": {}}
    path = write(tmp_path, [dense_record([16, 8, 4]), None, failed, dense_record([16, 32, 4])])
    df = read_wa_json([path])
    assert df["model_id"].tolist() == ["16-8-4", "16-32-4"]
    assert df.attrs["skipped"] == 1


def test_a_record_gives_its_layers_precision_reuse_and_string_valued_targets(tmp_path: Path) -> None:
    row = read_wa_json([write(tmp_path, dense_record([16, 8, 4], bits=6, reuse=32))]).iloc[0]
    layers = json.loads(row["layers"])
    assert [layer["type"] for layer in layers] == ["dense", "relu", "dense", "activation"]
    assert (layers[0]["weight_bits"], layers[0]["act_bits"], layers[0]["reuse"]) == (6, 6, 32)
    assert (row["strategy"], row["io_type"], row["reuse"], row["precision"]) == ("resource", "io_parallel", 32, 6)
    assert (row["lut"], row["bram"], row["latency_cycles"], row["ii"]) == (3120.0, 1.5, 212.0, 201.0)
    assert (row["tool"], row["tool_version"], row["clock_ns"]) == ("vivado", "2023.2", 5.0)


def test_the_hls_estimate_can_be_chosen_as_the_resources(tmp_path: Path) -> None:
    row = read_wa_json([write(tmp_path, dense_record([16, 8, 4]))], "hls_resource_report").iloc[0]
    assert (row["lut"], row["ff"], row["tool"]) == (4100.0, 2900.0, "vitis_hls")


def test_a_missing_interval_is_missing_not_zero(tmp_path: Path) -> None:
    rec = dense_record([16, 8, 4])
    del rec["latency_report"]["interval_max"]
    assert np.isnan(read_wa_json([write(tmp_path, rec)]).iloc[0]["ii"])


def test_a_convolutional_record_gives_kernel_positions_and_per_layer_precision(tmp_path: Path) -> None:
    row = read_wa_json([write(tmp_path, conv_record())]).iloc[0]
    conv, relu, pool, dense = json.loads(row["layers"])
    assert (conv["type"], conv["n_in"], conv["n_out"], conv["kernel"], conv["positions"]) == ("conv", 3, 16, 9, 36)
    assert conv["weight_bits"] == 6 and conv["act_bits"] == 8
    assert (relu["type"], pool["type"], pool["n_out"]) == ("relu", "pool", 144)
    assert (dense["n_in"], dense["n_out"], row["io_type"]) == (144, 10, "io_stream")
    assert from_row(row.to_dict()).nodes.shape[0] == 4


def test_a_dense_chain_splits_like_the_csv_row_of_the_same_architecture(tmp_path: Path) -> None:
    df = read_wa_json([write(tmp_path, dense_record([104, 48, 104, 104]))])
    assert df["model_id"].iloc[0] == "104-48-104-104"
    assert is_test(df["model_id"])[0] == (int(hashlib.sha256(b"104-48-104-104").hexdigest(), 16) % 10 == 0)


def test_an_unknown_layer_class_is_refused_naming_file_record_and_layer(tmp_path: Path) -> None:
    rec = dense_record([16, 8])
    rec["model_config"].insert(1, {"class_name": "LSTM", "name": "lstm_1", "input_shape": [None, 4, 16]})
    path = write(tmp_path, [rec])
    with pytest.raises(ValueError, match=r"records.json record 0: layer 1 \(lstm_1\) of class 'LSTM'"):
        read_wa_json([path])


def test_a_record_without_model_config_is_refused_naming_the_key(tmp_path: Path) -> None:
    rec = dense_record([16, 8])
    del rec["model_config"]
    with pytest.raises(ValueError, match=r"records.json: not a wa-hls4ml record .*model_config"):
        read_wa_json([write(tmp_path, rec)])


def test_a_folder_of_records_trains_with_one_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "wa"
    folder.mkdir()
    widths = [[16, w, 4] for w in range(8, 136, 8)]
    for i, w in enumerate(widths):
        write(folder, [dense_record(w, reuse=r, lut=str(100 * w[1] + r)) for r in (16, 64)], f"part{i}.json")
    out = tmp_path / "model.pt"
    assert main(["surrogate-train", str(folder), "-o", str(out), "--epochs", "2"]) == 0
    assert out.is_file() and "32 reports" in capsys.readouterr().out
    assert len(load([folder])) == 32


@pytest.mark.parametrize("text", ['{"meta_data": ', '[{"meta_data": {}}, {"mod'], ids=["record", "array"])
def test_a_truncated_file_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cut.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"cut\.json: not a readable JSON file"):
        read_wa_json([path])


def test_records_gather_into_one_parquet_dataset(tmp_path: Path) -> None:
    path = write(tmp_path, [dense_record([16, 8, 4]), conv_record()])
    out = tmp_path / "reports.parquet"
    assert main(["surrogate-dataset", str(path), "-o", str(out)]) == 0
    pd.testing.assert_frame_equal(load([out]), read_wa_json([path]), check_like=True)


def test_a_bad_record_leaves_no_dataset_behind(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rec = dense_record([16, 8])
    rec["model_config"][1]["class_name"] = "GRU"
    out = tmp_path / "reports.parquet"
    assert main(["surrogate-dataset", str(write(tmp_path, rec)), "-o", str(out)]) == 2
    assert "class 'GRU' is not read" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "records.json"]
