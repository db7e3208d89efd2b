"""The same network written in different legal ONNX spellings computes the same outputs, bit for bit, in
the emulation, the C simulation and the RTL.

Each test writes the CNN of `tests/spellings.py` in one spelling, converts it, and requires, on 1,000
edge-case vectors, that its emulation, its C simulation and its RTL arithmetic (the traced da4ml
program) all equal the reference spelling's emulation: named nodes, initializers, default attributes
written out, Gemm and Flatten, opset 13, nodes in topological order. The reference itself is pinned to
qonnx's executor, so no spelling can agree with a reference that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from qfx.hls.convert import convert
from qfx.hls.csim import edge_vectors, emulate, run_csim
from qfx.hls.project import Project
from qfx.hls.rtl.trace import trace
from qfx.testbench.sim import simulate

from .spellings import QUANT_DEFAULTS, REFERENCE, Spelling, is_topological, model, save

pytestmark = pytest.mark.slow

VECTORS = 1000
EXACT = {"emulation": 0, "csim": 0, "rtl": 0}


@dataclass(repr=False)
class Run:
    """One spelling, converted, on the edge-case vectors of its input port."""

    spelling: Spelling
    project: Project
    x: np.ndarray
    outputs: dict[str, np.ndarray]  # emulation, csim, rtl (and verilator, where a test simulates it)

    def __repr__(self) -> str:  # what a failing test prints for it
        return f"Run({self.spelling}, {len(self.x)} vectors)"


def run(spelling: Spelling, tmp: Path) -> Run:
    path = save(spelling, tmp / "model.onnx")
    convert(path, tmp / "prj", rtl="da", check=None)
    project = Project(tmp / "prj")
    x = edge_vectors(project.input_format, project.input_shape, VECTORS)
    port = project.quantize_inputs(x).reshape(len(x), -1)  # the first quantizer is applied before the port
    outputs = {
        "emulation": emulate(project, x),
        "csim": run_csim(project, x),
        "rtl": trace(project.graph).comb.predict(port).reshape(len(x), -1),
    }
    return Run(spelling, project, x, outputs)


def mismatches(got: Run, reference: Run) -> dict[str, int]:
    """For each result of `got`, the vectors on which it differs anywhere from the reference's emulation."""
    assert (got.project.input_format, got.project.input_shape) == (
        reference.project.input_format,
        reference.project.input_shape,
    ), f"{got.spelling}: the input port differs from the reference's"
    assert np.array_equal(got.x, reference.x)  # the same port gets the same vectors
    want = reference.outputs["emulation"]
    counts = {}
    for name, y in got.outputs.items():
        assert y.shape == want.shape, f"{got.spelling} {name}: outputs of shape {y.shape}, expected {want.shape}"
        counts[name] = int((y != want).any(axis=1).sum())
    return counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(REFERENCE, tmp_path_factory.mktemp("reference"))


def test_reference_spelling_is_bit_exact_in_emulation_csim_and_rtl(reference: Run) -> None:
    assert mismatches(reference, reference) == EXACT
    # the vectors exercise the network rather than saturate it into a few outputs
    assert len(np.unique(reference.outputs["emulation"], axis=0)) > VECTORS // 2


def test_reference_emulation_is_what_qonnx_executes(reference: Run) -> None:
    """qonnx runs the network in float32, exactly here (few bits, power-of-two scales, round half to even)."""
    onnx_model = ModelWrapper(model(REFERENCE)).transform(InferShapes())
    x = reference.x[:200].astype(np.float32)
    executed = np.concatenate([execute_onnx(onnx_model, {"x": xi[None]})["y"] for xi in x])
    emulated = emulate(reference.project, x.astype(np.float64))
    assert int((executed.astype(np.float64) != emulated).any(axis=1).sum()) == 0


def test_unnamed_nodes_compute_what_named_nodes_compute(reference: Run, tmp_path: Path) -> None:
    spelling = Spelling(names=False)
    assert not any(node.name for node in model(spelling).graph.node)
    unnamed = run(spelling, tmp_path)
    unnamed.outputs["verilator"] = simulate(unnamed.project, unnamed.x, "verilator").outputs
    assert mismatches(unnamed, reference) == {**EXACT, "verilator": 0}


def test_matmul_plus_add_computes_what_gemm_with_bias_computes(reference: Run, tmp_path: Path) -> None:
    assert mismatches(run(Spelling(dense="matmul_add"), tmp_path), reference) == EXACT


def test_gemm_with_trans_b_and_weights_stored_out_by_in_computes_what_gemm_computes(
    reference: Run, tmp_path: Path
) -> None:
    assert mismatches(run(Spelling(dense="gemm_transB"), tmp_path), reference) == EXACT


@pytest.mark.parametrize("flatten", ["reshape_1", "reshape_0"], ids=["shape_1_-1", "shape_0_-1"])
def test_reshape_computes_what_flatten_computes(flatten: str, reference: Run, tmp_path: Path) -> None:
    assert mismatches(run(Spelling(flatten=flatten), tmp_path), reference) == EXACT


def test_constant_nodes_compute_what_initializers_compute(reference: Run, tmp_path: Path) -> None:
    spelling = Spelling(flatten="reshape_1", constant_nodes=True)  # the Reshape's shape is a Constant too
    proto, initializers = model(spelling), model(Spelling(flatten="reshape_1")).graph.initializer
    assert not proto.graph.initializer
    assert sum(n.op_type == "Constant" for n in proto.graph.node) == len(initializers)
    assert mismatches(run(spelling, tmp_path), reference) == EXACT


def test_omitted_default_attributes_compute_what_explicit_ones_compute(reference: Run, tmp_path: Path) -> None:
    spelling = Spelling(explicit_defaults=False)
    written = {n.op_type: {a.name for a in n.attribute} for n in model(spelling).graph.node}
    assert written["Conv"] == written["Flatten"] == written["Gemm"] == set()
    assert mismatches(run(spelling, tmp_path), reference) == EXACT


@pytest.mark.parametrize("attribute", sorted(QUANT_DEFAULTS))
def test_quant_without_a_default_attribute_computes_what_it_computes_written_out(
    attribute: str, reference: Run, tmp_path: Path
) -> None:
    """QONNX's Quant defaults: signed=1, narrow=0, rounding_mode=ROUND."""
    assert mismatches(run(Spelling(omitted_quant_defaults=(attribute,)), tmp_path), reference) == EXACT


@pytest.mark.parametrize("opset", [11, 17, 19])
def test_every_opset_computes_what_opset_13_computes(opset: int, reference: Run, tmp_path: Path) -> None:
    assert mismatches(run(Spelling(opset=opset), tmp_path), reference) == EXACT


def test_nodes_out_of_topological_order_compute_what_sorted_nodes_compute(reference: Run, tmp_path: Path) -> None:
    spelling = Spelling(shuffled=True)
    assert not is_topological(model(spelling))
    assert mismatches(run(spelling, tmp_path), reference) == EXACT


def test_all_spellings_at_once_compute_what_the_reference_computes(reference: Run, tmp_path: Path) -> None:
    """Every standard-op spelling together (Quant's own defaults are the test above)."""
    spelling = Spelling(
        names=False,
        dense="gemm_transB",
        flatten="reshape_0",
        constant_nodes=True,
        explicit_defaults=False,
        opset=19,
        shuffled=True,
    )
    assert mismatches(run(spelling, tmp_path), reference) == EXACT
