"""QONNX `Trunc` as Brevitas writes it after average pooling (AveragePool, Mul by the window, Trunc), in
its v1 and v2 forms: exact against qonnx's executor, the C simulation and the RTL's program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from qfx.cli import main
from qfx.hls.csim import run_csim
from qfx.hls.project import Project

from .conversion_models import save_model
from .qonnx_reference import qonnx_outputs

pytestmark = pytest.mark.slow
DOMAIN = "qonnx.custom_op.general"


def _c(name: str, value: object) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _quant(x: str, scale: str, bits: str, out: str) -> onnx.NodeProto:
    return helper.make_node(
        "Quant", [x, scale, "z", bits], [out], domain=DOMAIN, signed=1, narrow=0, rounding_mode="ROUND"
    )


def pooled_cnn(path: Path, version: int) -> Path:
    """Conv -> Quant -> AveragePool 2x2 -> Mul 4 -> Trunc (10 -> 8 bits) -> Flatten -> MatMul, unnamed nodes."""
    rng = np.random.default_rng(2)
    inits = [
        _c("s", 2.0**-4), _c("z", 0.0), _c("b8", 8.0), _c("b10", 10.0), _c("four", 4.0), _c("so", 2.0**-2),
        _c("wc", rng.normal(0, 0.4, (4, 1, 3, 3))), _c("w", rng.integers(-8, 8, (64, 5)) / 8), _c("ws", 2.0**-3),
        _c("b4", 4.0),
    ]  # fmt: skip
    trunc = (
        helper.make_node("Trunc", ["apm", "s", "z", "b10", "b8"], ["t"], domain=DOMAIN, rounding_mode="FLOOR")
        if version == 1
        else helper.make_node(
            "Trunc", ["apm", "s", "z", "b10", "so", "b8"], ["t"], domain=DOMAIN, rounding_mode="FLOOR"
        )
    )
    nodes = [
        _quant("x", "s", "b8", "xq"),
        _quant("wc", "s", "b8", "wcq"),
        helper.make_node("Conv", ["xq", "wcq"], ["cv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _quant("cv", "s", "b8", "cq"),
        helper.make_node("AveragePool", ["cq"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Mul", ["ap", "four"], ["apm"]),
        trunc,
        helper.make_node("Flatten", ["t"], ["f"], axis=1),
        _quant("w", "ws", "b4", "wq"),
        helper.make_node("MatMul", ["f", "wq"], ["y"]),
    ]
    save_model(str(path), nodes, inits, [1, 1, 8, 8], 5, qonnx_opset=version)
    return path


@pytest.mark.parametrize("version", [1, 2])
def test_trunc_after_average_pooling_is_exact_against_qonnx_csim_and_rtl(tmp_path: Path, version: int) -> None:
    model = pooled_cnn(tmp_path / "m.onnx", version)
    assert main(["convert", str(model), "-o", str(tmp_path / "p"), "--simulator", "none", "--check", "1000"]) == 0
    assert main(["verify", str(tmp_path / "p"), "--simulator", "da4ml", "--vectors", "1000"]) == 0
    x = np.random.default_rng(0).uniform(-9, 9, (200, 1, 8, 8))
    assert np.array_equal(run_csim(Project(tmp_path / "p"), x), qonnx_outputs(model, x))
