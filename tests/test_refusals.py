"""Models qfx cannot prove exactly are refused before anything is built: exit 2, one line naming the
node and the reason, nothing left behind. Written with onnx.helper, as other tools write QONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qfx.cli import main

from .conversion_models import hand_built_qonnx, quant

Q = "qonnx.custom_op.general"


def _save(path: Path, nodes: list, inits: list, shape_in: list[int], shape_out: list[int], out: str = "y") -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape_out)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)]), path)
    return path


def _refused(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    rc = main(["convert", str(path), "-o", str(tmp_path / "prj"), "--no-check", *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not (tmp_path / "prj").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".prj")]
    return err


def _conv(tmp_path: Path, **conv_attrs: object) -> Path:
    nodes: list = []
    inits = [numpy_helper.from_array(np.full((4, 2 // conv_attrs.get("group", 1), 3, 3), 0.25, np.float32), "w")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    nodes.append(helper.make_node("Conv", [x, "w"], ["c"], name="conv", **conv_attrs))
    quant("y", "c", 2.0**-4, 10, 1, nodes, inits)
    return _save(tmp_path / "m.onnx", nodes, inits, [1, 2, 8, 8], [1, 4, None, None])


def test_a_dilated_convolution_is_refused_as_hls4ml_ignores_dilations(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    err = _refused(_conv(tmp_path, dilations=[2, 2]), tmp_path, capsys)
    assert "node conv: Conv with dilations [2, 2]" in err


def test_a_grouped_convolution_is_refused_as_hls4ml_ignores_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert "node conv: Conv with dilations [1, 1] and group 2" in _refused(_conv(tmp_path, group=2), tmp_path, capsys)


def test_an_input_quantized_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nodes: list = []
    inits: list = []
    a = quant("a", "x", 2.0**-4, 8, 1, nodes, inits)
    b = quant("b", "x", 2.0**-1, 3, 1, nodes, inits)
    nodes.append(helper.make_node("Add", [a, b], ["y"], name="sum"))
    err = _refused(_save(tmp_path / "m.onnx", nodes, inits, [1, 4], [1, 4]), tmp_path, capsys)
    assert "tensor x: the input feeds 2 quantizers (a_node, b_node)" in err


def test_a_signed_one_bit_quant_is_refused_as_qonnx_reads_it_bipolar(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    nodes: list = []
    inits = [numpy_helper.from_array(np.array([[1.0], [-1.0], [1.0], [1.0]], np.float32), "w")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    w = quant("wq", "w", 1.0, 1, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [x, w], ["y"], name="mm"))
    err = _refused(_save(tmp_path / "m.onnx", nodes, inits, [1, 4], [1, 1]), tmp_path, capsys)
    assert "node wq_node: a signed 1-bit Quant is bipolar" in err


def test_a_k_hot_activation_quantizer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nodes: list = []
    inits = [numpy_helper.from_array(np.eye(4, dtype=np.float32) / 2, "w")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [x, "w"], ["h"], name="mm"))
    quant("y", "h", 2.0**-4, 8, 1, nodes, inits, qfx_k_hot=1)
    err = _refused(_save(tmp_path / "m.onnx", nodes, inits, [1, 4], [1, 4]), tmp_path, capsys)
    assert "node y_node: K-hot activations (qfx_k_hot) are not converted" in err


def test_a_reshape_that_moves_the_batch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nodes: list = []
    inits = [numpy_helper.from_array(np.array([-1, 4], np.int64), "shape")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    nodes.append(helper.make_node("Reshape", [x, "shape"], ["y"], name="fold"))
    err = _refused(_save(tmp_path / "m.onnx", nodes, inits, [1, 2, 4], [2, 4]), tmp_path, capsys)
    assert "node fold: Reshape of [1, 2, 4] to [-1, 4] mixes the batch dimension" in err


def test_the_current_folder_is_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    hand_built_qonnx(str(tmp_path / "h.onnx"))
    monkeypatch.chdir(tmp_path)
    rc = main(["convert", "h.onnx", "-o", ".", "--force", "--no-check", "--rtl", "none"])
    assert rc == 2 and "current folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.onnx"]


def test_force_never_deletes_the_input_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "prj").mkdir()
    hand_built_qonnx(str(tmp_path / "prj" / "h.onnx"))
    rc = main(["convert", str(tmp_path / "prj" / "h.onnx"), "-o", str(tmp_path / "prj"), "--force", "--no-check"])
    assert rc == 2 and "--force would delete it" in capsys.readouterr().err
    assert (tmp_path / "prj" / "h.onnx").is_file()
