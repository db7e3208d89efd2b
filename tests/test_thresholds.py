"""Non-power-of-two scales and float BatchNorm as Brevitas and FINN write them: scales move to the next
quantizer, cancel against their inverse, and float ops before a quantizer become exact integer thresholds
that put every value at the level qonnx's executor gives it; what has no exact thresholds is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from qfx.cli import main
from qfx.hls import host
from qfx.hls.emulate import Emulator
from qfx.hls.graph import load
from qfx.hls.project import Project

from .conversion_models import save_model
from .qonnx_reference import qonnx_outputs

DATA = Path(__file__).parent / "data" / "qonnx"
DOMAIN = "qonnx.custom_op.general"
QUANT = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"}


def _prepared(path: Path):
    return host.prepared_split(load(path))


def _executor_tensor(path: Path, x: np.ndarray, tensor: str) -> np.ndarray:
    model = ModelWrapper(str(path)).transform(InferShapes())
    name = model.graph.input[0].name
    runs = [execute_onnx(model, {name: x[i : i + 1].astype(np.float32)}, True)[tensor] for i in range(len(x))]
    return np.concatenate(runs)


def _emulated_tensor(parts, graph, x: np.ndarray, tensor: str) -> np.ndarray:
    emu = Emulator(graph)
    values = dict(emu.consts)
    values[graph.input_name] = torch.as_tensor(host.run(parts.head, x) if parts.head else x, dtype=torch.float64)
    for node in graph.nodes:
        values[node.output[0]] = emu.op(node, [values[i] if i else None for i in node.input])
    return values[tensor].numpy()


def _end_to_end(parts, graph, x: np.ndarray) -> np.ndarray:
    y = Emulator(graph).run(host.run(parts.head, x) if parts.head else x)
    return host.run(parts.tail, y) if parts.tail else y


def test_float_batchnorm_and_scales_become_thresholds_at_the_executors_levels() -> None:
    path = DATA / "brevitas_style_mlp.onnx"
    parts, graph = _prepared(path)
    assert [n.op_type for n in graph.nodes].count("MultiThreshold") == 1
    assert not {"Div", "Sub", "BatchNormalization"} & {n.op_type for n in graph.nodes}
    x = np.random.default_rng(0).normal(0, 3, (1000, 16))
    threshold = next(n for n in graph.nodes if n.op_type == "MultiThreshold")
    levels = _emulated_tensor(parts, graph, x, threshold.output[0])
    expected = _executor_tensor(path, x, "a1") / np.float32(0.173)  # the quantizer's levels times its scale
    assert np.array_equal(levels, np.rint(expected))
    assert len(np.unique(levels)) == 16  # every level of the 4-bit quantizer is met


def test_channels_whose_float_ops_decrease_are_thresholded_on_the_negated_tensor() -> None:
    _, graph = _prepared(DATA / "brevitas_style_mlp.onnx")
    signs = next(n for n in graph.nodes if n.op_type == "Mul" and n.output[0].endswith("_signed_in"))
    assert set(np.unique(graph.initializer(signs.input[1]))) == {-1.0, 1.0}  # some BatchNorm gammas are negative


def test_output_scales_and_a_float_affine_tail_run_on_the_host_as_the_file_computes_them() -> None:
    path = DATA / "finn_bipolar_mlp.onnx"
    parts, graph = _prepared(path)
    assert [n.op_type for n in parts.head.graph.node] == ["Mul", "Sub", "BipolarQuant"]
    assert [n.op_type for n in parts.tail.graph.node] == ["Mul", "Add"]
    x = np.random.default_rng(1).integers(0, 2, (500, 24)).astype(np.float64)
    assert np.array_equal(_end_to_end(parts, graph, x), qonnx_outputs(path, x))


def test_a_multithreshold_file_computes_what_qonnx_executes() -> None:
    path = DATA / "multithreshold.onnx"
    parts, graph = _prepared(path)
    x = np.random.default_rng(2).normal(0, 2, (500, 16))
    assert np.array_equal(_end_to_end(parts, graph, x), qonnx_outputs(path, x))


def _requantized(path: Path, scale: float, between: list[str], bits: int = 8) -> Path:
    """Quant(x, scale) -> `between` ops -> Quant(., scale): Brevitas's shared quantizer around a pool."""
    inits = [numpy_helper.from_array(np.array(v, dtype=np.float32), n)
             for n, v in (("s", scale), ("z", 0.0), ("b", float(bits)), ("b16", 16.0))]  # fmt: skip
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["t0"], domain=DOMAIN, **QUANT)]
    for n, op in enumerate(between):
        nodes.append(helper.make_node(op, [f"t{n}"], [f"t{n + 1}"]))
    nodes.append(helper.make_node("Quant", [f"t{len(between)}", "s", "z", "b"], ["y"], domain=DOMAIN, **QUANT))
    save_model(str(path), nodes, inits, [1, 8], 8)
    return path


def test_a_scale_meets_its_inverse_and_cancels_without_thresholds(tmp_path: Path) -> None:
    path = _requantized(tmp_path / "m.onnx", 0.3, ["Relu"])
    parts, graph = _prepared(path)
    assert {n.op_type for n in graph.nodes} == {"Quant", "Relu"}
    x = np.random.default_rng(3).normal(0, 20, (500, 8))
    assert np.array_equal(_end_to_end(parts, graph, x), qonnx_outputs(path, x))


def _bn_before_quant(path: Path, bits: int, weight_scale: np.ndarray) -> Path:
    rng = np.random.default_rng(4)
    values = {"s": 2.0**-4, "z": 0.0, "b8": 8.0, "bq": float(bits), "ws": weight_scale,
              "w": rng.normal(size=(8, 4)), "g": rng.uniform(0.5, 1, 4), "be": rng.normal(size=4),
              "mu": rng.normal(size=4), "var": np.ones(4) * 3}  # fmt: skip
    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.float32), n) for n, v in values.items()]
    nodes = [
        helper.make_node("Quant", ["x", "s", "z", "b8"], ["xq"], domain=DOMAIN),
        helper.make_node("Quant", ["w", "ws", "z", "b8"], ["wq"], domain=DOMAIN),
        helper.make_node("MatMul", ["xq", "wq"], ["h"]),
        helper.make_node("BatchNormalization", ["h", "g", "be", "mu", "var"], ["hn"]),
        helper.make_node("Quant", ["hn", "s", "z", "bq"], ["y"], domain=DOMAIN),
    ]
    save_model(str(path), nodes, inits, [1, 8], 4)
    return path


def test_a_quantizer_with_too_many_levels_for_thresholds_is_refused_naming_it(tmp_path: Path) -> None:
    path = _bn_before_quant(tmp_path / "m.onnx", 16, np.float32(2.0**-5))
    with pytest.raises(ValueError, match=r"node Quant_2: 65536 levels after float ops"):
        _prepared(path)


def test_a_weight_scale_that_varies_along_the_summed_axis_is_refused_naming_it(tmp_path: Path) -> None:
    path = _bn_before_quant(tmp_path / "m.onnx", 4, np.linspace(0.01, 0.02, 8).reshape(8, 1))
    with pytest.raises(ValueError, match=r"node Quant_1: the weight scale of MatMul node MatMul_0 varies"):
        _prepared(path)


@pytest.mark.slow
def test_thresholds_are_bit_exact_in_c_simulation_and_rtl(tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert main(["convert", str(DATA / "brevitas_style_mlp.onnx"), "-o", str(out), "--check", "1000"]) == 0
    check = Project(out)["check"]
    assert check["mismatches"] == 0 and check["vectors"] >= 1000
