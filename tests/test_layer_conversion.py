"""Every layer the README advertises converts bit-exactly (emulation == C simulation == RTL on 1,000
edge-case and random vectors, and the emulation equals the torch model), or is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import qfx.nn as qnn
from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.hls.csim import edge_vectors, emulate
from qfx.hls.project import Project
from qfx.quant import Spec
from qfx.testbench.verify import verify

pytestmark = pytest.mark.slow
VECTORS = 1000


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
    summary = verify(tmp_path / "prj", vectors=VECTORS, simulator="verilator")
    assert set(summary["pairs"]) == {"emulation vs csim", "emulation vs rtl", "csim vs rtl"}
    assert summary["mismatches"] == 0, summary["pairs"]
    x = edge_vectors(Project(tmp_path / "prj").input_format, shape, VECTORS)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    assert np.array_equal(emulate(tmp_path / "prj", x), expected)
