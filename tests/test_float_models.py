"""Float ONNX models (no quantizer, as hls4ml's own examples are) convert with a declared precision or with
formats calibrated on sample inputs; the formats are written into the graph, so the proof holds, and the
manifest says how far the outputs moved from the float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qfx.cli import main
from qfx.hls.project import Project

pytestmark = pytest.mark.slow


def float_mlp(path: Path) -> Path:
    """16 -> Gemm 12 -> Relu -> Gemm 5 -> Softmax, float weights, unnamed nodes, as torch.onnx writes it."""
    rng = np.random.default_rng(4)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.4, (12, 16)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 12).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.4, (5, 12)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, 5).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "float_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def _convert(tmp_path: Path, *extra: str) -> int:
    model = float_mlp(tmp_path / "m.onnx")
    return main(["convert", str(model), "-o", str(tmp_path / "p"), "--simulator", "none", *extra])


def test_a_declared_precision_is_written_everywhere_and_proven(tmp_path: Path) -> None:
    assert _convert(tmp_path, "--precision", "ap_fixed<16,6>", "--check", "1000") == 0
    project = Project(tmp_path / "p")
    assert project["check"]["mismatches"] == 0
    floating = project["float_model"]
    assert floating["precision"] == "ap_fixed<16,6>" and set(floating["formats"].values()) == {"ap_fixed<16,6>"}
    assert project["host"]["tail"]["ops"] == ["Softmax"]  # the float tail runs on the host
    assert floating["output_change"]["max_abs"] < 0.05 and floating["output_change"]["argmax_agreement"] > 0.95
    assert main(["verify", str(tmp_path / "p"), "--simulator", "da4ml", "--vectors", "1000"]) == 0


def test_calibrated_formats_hold_the_calibration_range(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(0, 1, (400, 16))
    np.save(tmp_path / "cal.npy", x)
    assert _convert(tmp_path, "--calibrate", str(tmp_path / "cal.npy"), "--bits", "10", "--check", "500") == 0
    floating = Project(tmp_path / "p")["float_model"]
    assert floating["calibrated_bits"] == 10 and floating["calibration_inputs"] == 400
    assert all(f.startswith(("ap_fixed<10,", "ap_ufixed<10,")) for f in floating["formats"].values())
    assert floating["output_change"]["argmax_agreement"] > 0.9


def test_a_float_model_without_a_precision_is_refused_saying_what_to_pass(tmp_path: Path, capsys) -> None:
    assert _convert(tmp_path) == 2
    assert "--precision 'ap_fixed<16,6>'" in capsys.readouterr().err
