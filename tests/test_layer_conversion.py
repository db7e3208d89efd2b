"""Every layer the README advertises converts bit-exactly: emulation == C simulation == RTL on 1,000
edge-case and random vectors, and the emulation equals the torch model. The RTL is the traced program
(da4ml's interpreter) for every layer, and the Verilog on Verilator for the layers whose RTL is new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import qfx.nn as qnn
from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.hls.csim import edge_vectors, emulate
from qfx.hls.project import Project
from qfx.quant import Spec
from qfx.testbench.verify import verify

from .conversion_models import quant

pytestmark = pytest.mark.slow
VECTORS = 1000
Q = "qonnx.custom_op.general"
# Verilator builds take tens of seconds each: these layers' Verilog runs on it, the rest as da4ml programs.
ON_VERILATOR = ("avgpool2d", "maxpool1d_padded_after_relu", "maxpool2d_padded_after_relu")


class Residual(qnn.FixedModel):
    def __init__(self) -> None:
        super().__init__()
        self.inp = qnn.Quant(Spec(6))
        self.fc = qnn.Linear(8, 8, weight=6, result=Spec(7))
        self.add = qnn.Add(result=Spec(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        return self.add(self.fc(x), x)


def _features(*layers: torch.nn.Module) -> qnn.Sequential:
    return qnn.Sequential(qnn.Quant(Spec(6)), *layers)


LAYERS = {
    "conv1d": ([2, 9], lambda: _features(qnn.Conv1d(2, 3, 3, padding=1, weight=5, result=8))),
    "batchnorm1d": ([6], lambda: _features(qnn.Linear(6, 4, weight=5, result=8), qnn.BatchNorm1d(4, result=8))),
    "batchnorm1d_on_conv1d": (
        [2, 8],
        lambda: _features(qnn.Conv1d(2, 3, 3, weight=5, result=8), qnn.BatchNorm1d(3, result=8)),
    ),
    "maxpool2d": ([2, 6, 6], lambda: _features(qnn.Conv2d(2, 3, 3, weight=5, result=7), qnn.MaxPool2d(2))),
    "maxpool2d_padded_signed": (
        [2, 6, 6],
        lambda: _features(qnn.Conv2d(2, 3, 3, weight=5, result=7), qnn.MaxPool2d(3, 2, padding=1)),
    ),
    "avgpool2d": ([2, 6, 6], lambda: _features(qnn.Conv2d(2, 2, 3, weight=5, result=7), qnn.AvgPool2d(2, result=8))),
    "residual_add": ([8], Residual),
}
LAYERS |= {
    "maxpool1d": ([2, 8], lambda: _features(qnn.Conv1d(2, 3, 3, weight=5, result=7), qnn.MaxPool1d(2))),
    "maxpool1d_padded_after_relu": (
        [2, 8],
        lambda: _features(qnn.Conv1d(2, 3, 3, weight=5, result=None), qnn.ReLU(6), qnn.MaxPool1d(3, 2, padding=1)),
    ),
    "maxpool2d_padded_after_relu": (
        [2, 6, 6],
        lambda: _features(qnn.Conv2d(2, 3, 3, weight=5, result=None), qnn.ReLU(6), qnn.MaxPool2d(3, 2, padding=1)),
    ),
    "avgpool1d": ([2, 8], lambda: _features(qnn.Conv1d(2, 2, 3, weight=5, result=7), qnn.AvgPool1d(2, result=8))),
}


def _exported(build, shape: list[int], path: Path) -> torch.nn.Module:
    """The model calibrated on random data (every binary point set), exported to `path`."""
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():
        model(torch.randn(256, *shape) * 2)
    model = model.double().eval()
    to_onnx(model, torch.zeros(1, *shape), path)
    return model


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_converts_bit_exactly(name: str, tmp_path: Path) -> None:
    shape, build = LAYERS[name]
    model = _exported(build, shape, tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "prj")
    summary = verify(tmp_path / "prj", vectors=VECTORS, simulator="verilator" if name in ON_VERILATOR else "da4ml")
    assert set(summary["pairs"]) == {"emulation vs csim", "emulation vs rtl", "csim vs rtl"}
    assert summary["mismatches"] == 0, summary["pairs"]
    x = edge_vectors(Project(tmp_path / "prj").input_format, shape, VECTORS)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    assert np.array_equal(emulate(tmp_path / "prj", x), expected)


def _pool_model(path: Path, op: str, **attrs: object) -> Path:
    """x [1, 2, 5, 5] -> Quant -> pool -> Quant, written with onnx.helper as other tools write QONNX."""
    nodes: list = []
    inits: list = []
    x = quant("xq", "x", 2.0**-3, 6, 1, nodes, inits)
    nodes.append(helper.make_node(op, [x], ["p"], name="pool", **attrs))
    quant("y", "p", 2.0**-6, 12, 1, nodes, inits)
    graph = helper.make_graph(
        nodes,
        "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(Q, 1)])
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_padded_average_pool_divides_as_onnx_does(count_include_pad: int, tmp_path: Path) -> None:
    path = _pool_model(
        tmp_path / "m.onnx", "AveragePool", kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
        count_include_pad=count_include_pad,
    )  # fmt: skip
    convert(path, tmp_path / "prj")
    summary = verify(tmp_path / "prj", vectors=VECTORS, simulator="da4ml")
    assert summary["mismatches"] == 0, summary["pairs"]


def test_io_stream_pooling_with_a_stride_other_than_the_kernel_is_refused(tmp_path: Path) -> None:
    path = _pool_model(tmp_path / "m.onnx", "MaxPool", kernel_shape=[3, 3], strides=[2, 2])
    with pytest.raises(ValueError, match=r"layer \S+: io_stream 2-D pooling needs stride == kernel"):
        convert(path, tmp_path / "prj", io="stream", rtl="none")
    assert not (tmp_path / "prj").exists()
