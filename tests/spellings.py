"""One small quantized CNN, written with onnx.helper in any of several legal ONNX spellings.

Every spelling is the same network with the same weights:

    x [1, 1, 5, 5] -> Quant -> Conv 3x3 (2 channels, bias) -> Relu -> Quant -> Flatten [1, 18]
      -> Gemm (bias) -> Relu -> Quant -> MatMul -> y [1, 3]

with power-of-two Quant scales and weights that are exactly representable in their quantizers, so
quantizing a weight changes nothing and every spelling has one exact meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
INPUT_SHAPE = [1, 1, 5, 5]
OUTPUT_SHAPE = [1, 3]
DENSE = ("gemm", "gemm_transB", "matmul_add")
FLATTEN = ("flatten", "reshape_1", "reshape_0")  # Flatten; Reshape to [1, -1]; Reshape to [0, -1]
OPSETS = (11, 13, 17, 19)
QUANT_DEFAULTS = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"}  # QONNX's


def _weights() -> dict[str, np.ndarray]:
    """Integers times the quantizer's LSB, inside its range: each value is exact in its Quant."""
    rng = np.random.default_rng(7)
    return {
        "w1": rng.integers(-8, 8, (2, 1, 3, 3)) / 8,  # Quant 4 bits, scale 2^-3
        "b1": rng.integers(-32, 32, (2,)) / 16,  # Quant 7 bits, scale 2^-4
        "w2": rng.integers(-8, 8, (18, 6)) / 16,  # Quant 4 bits, scale 2^-4, [in, out]
        "b2": rng.integers(-64, 64, (6,)) / 32,  # Quant 8 bits, scale 2^-5
        "w3": rng.integers(-16, 16, (6, 3)) / 32,  # Quant 5 bits, scale 2^-5
    }


WEIGHTS = _weights()


@dataclass(frozen=True)
class Spelling:
    """How the network is written; the default is the reference spelling."""

    names: bool = True  # every node named (onnx.helper leaves names empty unless given one)
    dense: str = "gemm"  # Gemm [in, out] with bias; Gemm transB=1 with weights [out, in]; MatMul + Add
    flatten: str = "flatten"
    constant_nodes: bool = False  # weights, Quant scale/zero point/bit width and Reshape shape as Constant nodes
    explicit_defaults: bool = True  # Conv, Flatten, Gemm, Reshape attributes written even at their defaults
    omitted_quant_defaults: tuple[str, ...] = ()  # of Quant's signed=1, narrow=0, rounding_mode=ROUND
    opset: int = 13
    shuffled: bool = False  # nodes listed out of topological order

    def __post_init__(self) -> None:
        if (
            self.dense not in DENSE
            or self.flatten not in FLATTEN
            or self.opset not in OPSETS
            or not set(self.omitted_quant_defaults) <= set(QUANT_DEFAULTS)
        ):
            raise ValueError(f"no such spelling: {self!r}")

    def __str__(self) -> str:
        changed = {k: v for k, v in self.__dict__.items() if v != getattr(REFERENCE, k)}
        return ",".join(f"{k}={v}" for k, v in changed.items()) or "reference"


class _Writer:
    """Nodes and constants of one spelling."""

    def __init__(self, spelling: Spelling) -> None:
        self.s = spelling
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        tensor = numpy_helper.from_array(value, name)
        if self.s.constant_nodes:
            self.node("Constant", [], name, f"{name}_constant", value=tensor)
        else:
            self.inits.append(tensor)
        return name

    def node(
        self, op: str, inputs: list[str], output: str, name: str, defaults: dict[str, Any] | None = None, **attrs: Any
    ) -> str:
        """A node; `defaults` are attributes at their ONNX default values, written only when explicit."""
        if self.s.explicit_defaults and defaults:
            attrs = {**defaults, **attrs}
        self.nodes.append(helper.make_node(op, inputs, [output], name=name if self.s.names else None, **attrs))
        return output

    def quant(self, name: str, x: str, scale: float, bits: int, signed: bool) -> str:
        """A QONNX Quant: power-of-two scale, zero point 0, narrow=0, rounding_mode ROUND."""
        s = self.const(f"{name}_scale", np.array(scale, dtype=np.float32))
        z = self.const(f"{name}_zeropt", np.array(0.0, dtype=np.float32))
        b = self.const(f"{name}_bits", np.array(float(bits), dtype=np.float32))
        attrs = {"signed": int(signed), "narrow": 0, "rounding_mode": "ROUND"}
        for omitted in self.s.omitted_quant_defaults:
            if attrs[omitted] == QUANT_DEFAULTS[omitted]:
                del attrs[omitted]
        self.node("Quant", [x, s, z, b], name, f"{name}_quant", **attrs)
        self.nodes[-1].domain = QONNX_DOMAIN
        return name

    def weight(self, name: str, value: np.ndarray, scale: float, bits: int) -> str:
        return self.quant(f"{name}q", self.const(name, value.astype(np.float32)), scale, bits, True)


def model(spelling: Spelling) -> onnx.ModelProto:
    """The network in `spelling`, checked by ONNX's checker (after sorting, when shuffled)."""
    s, w = spelling, _Writer(spelling)
    x = w.quant("xq", "x", 2.0**-4, 8, True)
    w1 = w.weight("w1", WEIGHTS["w1"], 2.0**-3, 4)
    b1 = w.weight("b1", WEIGHTS["b1"], 2.0**-4, 7)
    conv_defaults = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1, "auto_pad": "NOTSET"}
    conv_defaults["kernel_shape"] = [3, 3]  # inferred from the weights when omitted
    c = w.node("Conv", [x, w1, b1], "c", "conv", conv_defaults)
    r = w.quant("rq", w.node("Relu", [c], "r", "relu1"), 2.0**-2, 6, False)

    if s.flatten == "flatten":
        f = w.node("Flatten", [r], "f", "flatten", {"axis": 1})
    else:
        shape = w.const("f_shape", np.array([1 if s.flatten == "reshape_1" else 0, -1], dtype=np.int64))
        f = w.node("Reshape", [r, shape], "f", "reshape", {"allowzero": 0} if s.opset >= 14 else None)

    b2 = w.weight("b2", WEIGHTS["b2"], 2.0**-5, 8)
    gemm_defaults = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    if s.dense == "gemm":
        w2 = w.weight("w2", WEIGHTS["w2"], 2.0**-4, 4)
        h = w.node("Gemm", [f, w2, b2], "h", "dense", gemm_defaults)
    elif s.dense == "gemm_transB":
        w2 = w.weight("w2", WEIGHTS["w2"].T.copy(), 2.0**-4, 4)
        h = w.node("Gemm", [f, w2, b2], "h", "dense", {**gemm_defaults, "transB": 1}, transB=1)
    else:
        w2 = w.weight("w2", WEIGHTS["w2"], 2.0**-4, 4)
        h = w.node("Add", [w.node("MatMul", [f, w2], "h_matmul", "dense_matmul"), b2], "h", "dense_bias")
    hq = w.quant("hq", w.node("Relu", [h], "hr", "relu2"), 2.0**-2, 6, False)
    w3 = w.weight("w3", WEIGHTS["w3"], 2.0**-5, 5)
    w.node("MatMul", [hq, w3], "y", "out")

    nodes = w.nodes
    if s.shuffled:
        order = np.random.default_rng(3).permutation(len(nodes))
        nodes = [nodes[i] for i in order]
    graph = helper.make_graph(
        nodes,
        "spellings",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, INPUT_SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, OUTPUT_SHAPE)],
        w.inits,
    )
    standard = helper.make_opsetid("", s.opset)
    proto = helper.make_model(
        graph,
        opset_imports=[standard, helper.make_opsetid(QONNX_DOMAIN, 1)],
        ir_version=helper.find_min_ir_version_for([standard]),  # what an exporter of that opset writes
    )
    onnx.checker.check_model(in_topological_order(proto))  # legal ONNX (the checker wants nodes sorted)
    return proto


def save(spelling: Spelling, path: str | Path) -> Path:
    onnx.save(model(spelling), str(path))
    return Path(path)


def _sources(proto: onnx.ModelProto) -> set[str]:
    return {i.name for i in proto.graph.input} | {t.name for t in proto.graph.initializer} | {""}


def is_topological(proto: onnx.ModelProto) -> bool:
    """Every node's inputs are graph inputs, initializers or outputs of nodes listed before it."""
    known = _sources(proto)
    for node in proto.graph.node:
        if not set(node.input) <= known:
            return False
        known |= set(node.output)
    return True


def in_topological_order(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with the nodes sorted (each after the producers of its inputs, otherwise as listed)."""
    known, pending, ordered = _sources(proto), list(proto.graph.node), []
    while pending:
        node = next(n for n in pending if set(n.input) <= known)
        pending.remove(node)
        ordered.append(node)
        known |= set(node.output)
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    del copy.graph.node[:]
    copy.graph.node.extend(ordered)
    return copy


REFERENCE = Spelling()
