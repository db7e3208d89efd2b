"""Small models for the conversion tests: trained briefly (exactness does not depend on accuracy)."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import qfx.nn as qnn
from qfx.data import digits
from qfx.models import digits_cnn, digits_mlp
from qfx.quant import Spec
from qfx.train import fit


class ResidualMLP(qnn.FixedModel):
    """x -> dense -> relu -> dense, plus a skip from the first relu: a residual add in fixed point."""

    def __init__(self, bits: int = 6) -> None:
        super().__init__()
        self.inp = qnn.Quant(Spec(bits, signed=False))
        self.fc1 = qnn.Linear(64, 32, weight=bits, result=None)
        self.act1 = qnn.ReLU(bits)
        self.fc2 = qnn.Linear(32, 32, weight=bits, result=Spec(bits + 2))
        self.add = qnn.Add(result=Spec(bits + 2))
        self.act2 = qnn.ReLU(bits)
        self.out = qnn.Linear(32, 10, weight=bits, result=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.fc1(self.inp(x)))
        return self.out(self.act2(self.add(self.fc2(h), h)))


def trained(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """A briefly trained model and example inputs for it."""
    torch.manual_seed(0)
    images = name == "cnn"
    data = digits(images=images)
    model = {
        "mlp": lambda: digits_mlp(6),
        "cnn": lambda: digits_cnn(6),
        "residual": ResidualMLP,
        "khot": lambda: digits_mlp(6, k_hot=2),
    }[name]()
    fit(model, data, epochs=3)
    return model.double().eval(), data.x_test.double()


def quant(name: str, x: str, scale: float, bits: int, signed: int, nodes: list, inits: list, **attrs: object) -> str:
    """Append a QONNX Quant node (power-of-two scale, zero point 0) and its constants; returns its output."""
    for suffix, value in (("s", scale), ("z", 0.0), ("b", float(bits))):
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), f"{name}_{suffix}"))
    nodes.append(
        helper.make_node(
            "Quant",
            [x, f"{name}_s", f"{name}_z", f"{name}_b"],
            [name],
            name=f"{name}_node",
            domain="qonnx.custom_op.general",
            signed=signed,
            narrow=0,
            rounding_mode="ROUND",
            **attrs,
        )
    )
    return name


def save_model(
    path: str, nodes: list, inits: list, n_in: int | list[int], n_out: int, out: str = "y", qonnx_opset: int = 1
) -> None:
    """The graph from input x ([1, n_in], or the shape n_in) to `out` [1, n_out], opset 13 and qonnx's."""
    graph = helper.make_graph(
        nodes,
        "hand_built",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in] if isinstance(n_in, int) else n_in)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, n_out])],
        inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", qonnx_opset)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)


def hand_built_qonnx(path: str) -> None:
    """A QONNX MLP written with onnx.helper, not by qfx: Quant on input, weights and activations,
    a Gemm layer with an unquantized float bias, Relu, MatMul."""
    rng = np.random.default_rng(0)
    nodes: list = []
    inits: list = []
    w1 = (rng.integers(-8, 8, (16, 12)) / 16).astype(np.float32)
    b1 = rng.normal(0, 0.3, 12).astype(np.float32)  # left in float on purpose
    w2 = (rng.integers(-32, 32, (12, 5)) / 64).astype(np.float32)
    inits += [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")]
    x = quant("xq", "x", 2.0**-4, 8, 1, nodes, inits)
    w1q = quant("w1q", "w1", 2.0**-4, 4, 1, nodes, inits)
    nodes.append(helper.make_node("Gemm", [x, w1q, "b1"], ["h"], name="gemm"))
    nodes.append(helper.make_node("Relu", ["h"], ["hr"], name="relu"))
    hq = quant("hq", "hr", 2.0**-3, 6, 0, nodes, inits)
    w2q = quant("w2q", "w2", 2.0**-6, 6, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [hq, w2q], ["y"], name="matmul"))
    save_model(path, nodes, inits, 16, 5)


def modes_qonnx(path: str, rounding: str = "RND_CONV") -> None:
    """A dense net whose quantizers wrap (signed, and unsigned from signed), saturate symmetrically and
    have negative integer bits: formats hls4ml's Quant handling cannot carry, for the RTL alone."""
    rng = np.random.default_rng(1)
    nodes: list = []
    inits: list = []
    w1 = (rng.integers(-16, 16, (8, 6)) / 8).astype(np.float32)
    w2 = (rng.integers(-16, 16, (6, 4)) / 32).astype(np.float32)
    inits += [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    x = quant("xq", "x", 2.0**-4, 7, 1, nodes, inits)
    nodes.append(helper.make_node("MatMul", [x, "w1"], ["h"], name="dense1"))
    hq = quant("hq", "h", 2.0**-2, 5, 1, nodes, inits, qfx_overflow="WRAP", qfx_rounding=rounding)
    nodes.append(helper.make_node("MatMul", [hq, "w2"], ["g"], name="dense2"))
    gq = quant("gq", "g", 2.0**-7, 4, 1, nodes, inits, qfx_overflow="SAT_SYM", qfx_rounding=rounding)  # I = -3
    uq = quant("uq", "g", 2.0**-3, 6, 0, nodes, inits, qfx_overflow="WRAP", qfx_rounding="TRN")  # negatives wrap
    nodes.append(helper.make_node("Add", [gq, uq], ["y"], name="sum"))
    save_model(path, nodes, inits, 8, 4)
