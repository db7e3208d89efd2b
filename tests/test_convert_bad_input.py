"""Bad input to `qfx convert` / `qfx csim`: one clear line, exit code 2, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qfx.cli import main

from .conversion_models import hand_built_qonnx, quant, save_model


def _run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


def test_malformed_onnx_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x01garbage")
    rc, err = _run(["convert", str(tmp_path / "bad.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "not a valid ONNX model" in err
    assert not (tmp_path / "p").exists()


def test_an_unsupported_op_inside_the_design_is_named_with_its_node(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    nodes: list = []
    inits = [numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    nodes.append(helper.make_node("Sigmoid", [x], ["s"], name="gate"))  # not at the end: no host tail
    nodes.append(helper.make_node("MatMul", ["s", "w"], ["y"], name="dense"))
    save_model(str(tmp_path / "m.onnx"), nodes, inits, 4, 4)
    rc, err = _run(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "node gate: op type Sigmoid is not supported" in err


def test_a_float_model_is_refused_saying_what_to_pass(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    node = helper.make_node("Sigmoid", ["x"], ["y"], name="gate")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    rc, err = _run(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "is a float model (no Quant node)" in err and "--calibrate" in err


def test_a_zero_point_other_than_zero_is_refused_naming_the_node(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    model = onnx.load(tmp_path / "h.onnx")
    for init in model.graph.initializer:
        if init.name == "hq_z":
            init.CopyFrom(numpy_helper.from_array(np.array(3.0, dtype=np.float32), "hq_z"))
    onnx.save(model, tmp_path / "h.onnx")
    rc, err = _run(["convert", str(tmp_path / "h.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "zero point must be 0" in err and "node " in err
    assert not (tmp_path / "p").exists()


def test_an_unquantized_input_is_refused_naming_the_tensor(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    w = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w],
    )
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx")
    rc, err = _run(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "unquantized" in err


def test_an_unknown_board_is_refused_listing_the_boards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    rc, err = _run(["convert", str(tmp_path / "h.onnx"), "-o", str(tmp_path / "p"), "--board", "zedboard"], capsys)
    assert rc == 2 and "ultra96v2" in err


def test_a_non_empty_output_directory_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    rc, err = _run(["convert", str(tmp_path / "h.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "--force" in err and (tmp_path / "p" / "keep.txt").exists()


@pytest.mark.slow
def test_csim_with_inputs_of_the_wrong_shape_says_what_it_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    assert main(["convert", str(tmp_path / "h.onnx"), "-o", str(tmp_path / "p"), "--no-check", "--rtl", "none"]) == 0
    np.save(tmp_path / "x.npy", np.zeros((3, 15)))
    rc, err = _run(
        ["csim", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")], capsys
    )
    assert rc == 2 and "[N, 16]" in err and not (tmp_path / "y.npy").exists()


def test_csim_on_a_directory_that_is_no_project_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 4)))
    rc, err = _run(["csim", str(tmp_path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y")], capsys)
    assert rc == 2 and "qfx.json" in err


def test_a_sign_magnitude_wrap_hls4ml_cannot_express_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    import qfx.nn as qnn
    from qfx.export import to_onnx
    from qfx.quant import Spec

    model = qnn.Sequential(qnn.Quant(Spec(8)), qnn.Linear(4, 2, result=Spec(8, overflow="WRAP_SM")))
    model(torch.randn(64, 4))  # calibrates every binary point
    with pytest.warns(UserWarning):  # WRAP_SM is qfx's own attribute: other QONNX tools saturate
        to_onnx(model, torch.randn(1, 4), tmp_path / "m.onnx")
    rc, err = _run(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p")], capsys)
    assert rc == 2 and "overflow WRAP_SM" in err and "no sign-magnitude wrap" in err
    assert not (tmp_path / "p").exists()
