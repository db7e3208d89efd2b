"""Float preprocessing before the first quantizer and a float tail after the last exact tensor run on the
host, in float32 as the ONNX does; the design between them is converted and proven; the whole agrees with
qonnx's own executor on the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from qfx.cli import main
from qfx.hls.project import Project

from .conversion_models import quant, save_model
from .qonnx_reference import qonnx_outputs

pytestmark = pytest.mark.slow


def finn_style(path: Path, tail: list[str]) -> Path:
    """An MLP as FINN's examples write it: inputs in [0, 1] mapped to [-1, 1] by Mul and Sub before the
    first quantizer, and a float tail (`tail`: Softmax, ArgMax, a Div) after the last MatMul."""
    rng = np.random.default_rng(5)
    nodes: list = []
    inits = [
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array((rng.integers(-8, 8, (12, 8)) / 8).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.integers(-8, 8, (8, 4)) / 8).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three"),
    ]
    nodes.append(helper.make_node("Mul", ["x", "two"], ["x2"]))
    nodes.append(helper.make_node("Sub", ["x2", "one"], ["xb"]))
    xq = quant("xq", "xb", 2.0**-5, 7, 1, nodes, inits)
    w1 = quant("w1q", "w1", 2.0**-3, 4, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [xq, w1], ["h"]))
    nodes.append(helper.make_node("Relu", ["h"], ["hr"]))
    hq = quant("hq", "hr", 2.0**-2, 6, 0, nodes, inits)
    w2 = quant("w2q", "w2", 2.0**-3, 4, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [hq, w2], ["logits"]))
    tensor = "logits"
    for n, op in enumerate(tail):
        extra = {"axis": -1} if op == "Softmax" else {"axis": 1, "keepdims": 1} if op == "ArgMax" else {}
        inputs = [tensor, "three"] if op == "Div" else [tensor]
        nodes.append(helper.make_node(op, inputs, [f"t{n}"], **extra))
        tensor = f"t{n}"
    out = 1 if tail and tail[-1] == "ArgMax" else 4
    save_model(str(path), nodes, inits, 12, out, out=tensor)
    if out == 1:
        model = onnx.load(path)
        model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
        onnx.save(model, path)
    return path


def _convert(model: Path, out: Path, *extra: str) -> int:
    return main(["convert", str(model), "-o", str(out), "--rtl", "none", "--simulator", "none", *extra])


@pytest.mark.parametrize("tail", [["Softmax"], ["Div", "Softmax"], ["ArgMax"]], ids="-".join)
def test_host_head_and_tail_with_the_design_agree_with_qonnx(tmp_path: Path, tail: list[str]) -> None:
    model = finn_style(tmp_path / "m.onnx", tail)
    assert _convert(model, tmp_path / "p", "--check", "1000") == 0
    project = Project(tmp_path / "p")
    assert project["check"]["mismatches"] == 0
    assert project["host"]["head"]["ops"] == ["Mul", "Sub"] and project["host"]["tail"]["ops"] == tail
    x = np.random.default_rng(0).uniform(-0.2, 1.2, (300, 12))
    np.save(tmp_path / "x.npy", x)
    csim = ["csim", str(tmp_path / "p"), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]
    assert main(csim) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), qonnx_outputs(model, x))


def test_tail_hw_keeps_a_softmax_in_the_design_and_is_refused_naming_it(tmp_path: Path, capsys) -> None:
    model = finn_style(tmp_path / "m.onnx", ["Softmax"])
    assert _convert(model, tmp_path / "p", "--tail", "hw") == 2
    assert "op type Softmax is not supported" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_model_ending_in_an_exact_layer_has_no_host_tail(tmp_path: Path) -> None:
    assert _convert(finn_style(tmp_path / "m.onnx", []), tmp_path / "p", "--no-check") == 0
    host = Project(tmp_path / "p")["host"]
    assert host["tail"] is None and host["head"]["ops"] == ["Mul", "Sub"]
    assert not (tmp_path / "p" / "tail.onnx").exists()
