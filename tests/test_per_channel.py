"""Weights with a power-of-two scale per output channel (Brevitas's per-channel fixed-point weights):
each channel quantized in its own format, exact through emulation, C simulation, the RTL's program and
qonnx's executor; a per-channel activation scale becomes the next layer's exact thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from qfx.cli import main
from qfx.hls.csim import run_csim
from qfx.hls.project import Project

from .conversion_models import quant, save_model
from .qonnx_reference import qonnx_outputs

pytestmark = pytest.mark.slow
DOMAIN = "qonnx.custom_op.general"


def _quant(name: str, x: str, scale: np.ndarray, bits: int, nodes: list, inits: list) -> str:
    """A signed Quant whose scale may be a tensor (per channel)."""
    inits += [
        numpy_helper.from_array(np.asarray(scale, dtype=np.float32), f"{name}_s"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), f"{name}_z"),
        numpy_helper.from_array(np.array(float(bits), dtype=np.float32), f"{name}_b"),
    ]
    inputs = [x, f"{name}_s", f"{name}_z", f"{name}_b"]
    nodes.append(helper.make_node("Quant", inputs, [name], domain=DOMAIN, signed=1, narrow=0, rounding_mode="ROUND"))
    return name


def conv_dense(path: Path, act_scale: np.ndarray | float = 2.0**-3) -> Path:
    """Conv (4 channels, scale [4,1,1,1]) -> Relu -> Quant -> Flatten -> MatMul (scale [1,5])."""
    rng = np.random.default_rng(7)
    nodes: list = []
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.4, (4, 1, 3, 3)).astype(np.float32), "wc"),
        numpy_helper.from_array(rng.normal(0, 0.2, (4 * 6 * 6, 5)).astype(np.float32), "wd"),
    ]
    x = quant("xq", "x", 2.0**-4, 6, 1, nodes, inits)
    wc = _quant("wcq", "wc", 2.0 ** -rng.integers(2, 6, (4, 1, 1, 1)), 5, nodes, inits)
    nodes.append(helper.make_node("Conv", [x, wc], ["c"], kernel_shape=[3, 3]))
    nodes.append(helper.make_node("Relu", ["c"], ["r"]))
    h = _quant("hq", "r", act_scale, 6, nodes, inits)
    nodes.append(helper.make_node("Flatten", [h], ["f"], axis=1))
    wd = _quant("wdq", "wd", 2.0 ** -rng.integers(3, 7, (1, 5)), 6, nodes, inits)
    nodes.append(helper.make_node("MatMul", ["f", wd], ["y"]))
    save_model(str(path), nodes, inits, [1, 1, 8, 8], 5)
    return path


def test_per_channel_weights_are_exact_against_every_implementation_and_qonnx(tmp_path: Path) -> None:
    model = conv_dense(tmp_path / "m.onnx")
    args = ["convert", str(model), "-o", str(tmp_path / "p"), "--simulator", "none", "--check", "1000"]
    assert main(args) == 0
    assert main(["verify", str(tmp_path / "p"), "--simulator", "da4ml", "--vectors", "1000"]) == 0
    x = np.random.default_rng(1).uniform(-2.5, 2.5, (200, 1, 8, 8))
    assert np.array_equal(run_csim(Project(tmp_path / "p"), x), qonnx_outputs(model, x))


def test_a_per_channel_activation_scale_becomes_exact_thresholds(tmp_path: Path) -> None:
    model = conv_dense(
        tmp_path / "m.onnx", act_scale=np.array([2.0**-3, 2.0**-2, 2.0**-3, 2.0**-4]).reshape(1, 4, 1, 1)
    )
    assert main(["convert", str(model), "-o", str(tmp_path / "p"), "--simulator", "none", "--check", "500"]) == 0
    assert "MultiThreshold" in {n.op_type for n in Project(tmp_path / "p").graph.nodes}
    x = np.random.default_rng(2).uniform(-2.5, 2.5, (200, 1, 8, 8))
    assert np.array_equal(run_csim(Project(tmp_path / "p"), x), qonnx_outputs(model, x))
