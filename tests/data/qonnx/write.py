"""Writes the QONNX files in this folder with onnx.helper, as other tools write them (no node names,
Constant nodes, omitted defaults, legacy domains, old opsets), plus malformed ones. Run once; the files are
committed, and tests/test_files_from_others.py converts every one of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
D = "qonnx.custom_op.general"
rng = np.random.default_rng(11)


def c(name: str, value: object) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def quant(x: str, s: str, b: str, out: str, domain: str = D, **attrs: object) -> onnx.NodeProto:
    attrs = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND", **attrs}
    return helper.make_node("Quant", [x, s, "z", b], [out], domain=domain, **attrs)


def save(name: str, nodes: list, inits: list, shape_in: list, shape_out: list, opset: int = 13, custom: int | None = 1,
         out: str = "y", out_type: int = TensorProto.FLOAT) -> None:  # fmt: skip
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info(out, out_type, shape_out)],
        inits,
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(D, custom)] if custom else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), HERE / f"{name}.onnx")


def base_inits() -> list:
    return [c("s", 2.0**-4), c("z", 0.0), c("b8", 8.0), c("ws", 2.0**-3), c("b4", 4.0), c("hs", 2.0**-2), c("b6", 6.0)]


def mlp(name: str, domain: str = D, opset: int = 13, custom: int | None = 1, tail: list | None = None) -> None:
    """Quant -> MatMul -> Relu -> Quant -> Gemm(float bias) -> tail; no node names."""
    inits = [*base_inits(), c("w1", rng.integers(-8, 8, (16, 12)) / 8), c("w2", rng.integers(-8, 8, (12, 5)) / 8),
             c("b2", rng.normal(0, 0.3, 5))]  # fmt: skip
    nodes = [
        quant("x", "s", "b8", "xq", domain),
        quant("w1", "ws", "b4", "w1q", domain),
        helper.make_node("MatMul", ["xq", "w1q"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        quant("hr", "hs", "b6", "hq", domain, signed=0),
        quant("w2", "ws", "b4", "w2q", domain),
        helper.make_node("Gemm", ["hq", "w2q", "b2"], ["g"]),
    ]
    tensor = "g"
    for n, op in enumerate(tail or []):
        nodes.append(helper.make_node(op, [tensor], [f"t{n}"], **({"axis": 1} if op == "Softmax" else {})))
        tensor = f"t{n}"
    save(name, nodes, inits, [1, 16], [1, 5], opset, custom, out=tensor)


def main() -> None:
    mlp("mlp_unnamed")
    mlp("mlp_finn_domain", domain="finn", custom=None, opset=11)
    mlp("mlp_legacy_general_domain", domain="finn.custom_op.general", custom=None, opset=9)
    mlp("mlp_softmax_tail", tail=["Softmax"])
    # Constant nodes instead of initializers, defaults omitted
    inits = [c("w", rng.integers(-8, 8, (8, 4)) / 8)]
    consts = [
        helper.make_node("Constant", [], [n], value=numpy_helper.from_array(np.array(v, dtype=np.float32), n))
        for n, v in (("s", 2.0**-4), ("z", 0.0), ("b8", 8.0), ("ws", 2.0**-3), ("b4", 4.0))
    ]
    nodes = [*consts, helper.make_node("Quant", ["x", "s", "z", "b8"], ["xq"], domain=D),
             helper.make_node("Quant", ["w", "ws", "z", "b4"], ["wq"], domain=D),
             helper.make_node("MatMul", ["xq", "wq"], ["y"])]  # fmt: skip
    save("constant_nodes_no_attributes", nodes, inits, [1, 8], [1, 4])
    # bipolar weights and activations (hls4ml's BipolarQuant test model's shape)
    inits = [*base_inits(), c("w", rng.normal(size=(16, 8))), c("one", 1.0)]
    nodes = [quant("x", "s", "b8", "xq"), helper.make_node("BipolarQuant", ["w", "one"], ["wq"], domain=D),
             helper.make_node("MatMul", ["xq", "wq"], ["h"]),
             helper.make_node("BipolarQuant", ["h", "one"], ["y"], domain=D)]  # fmt: skip
    save("bipolar_weights_and_activations", nodes, inits, [1, 16], [1, 8])
    # a non-power-of-two input scale (refused: it needs thresholds)
    inits = [*base_inits(), c("s127", 1 / 127), c("w", rng.integers(-8, 8, (16, 8)) / 8)]
    nodes = [
        quant("x", "s127", "b8", "xq"),
        quant("w", "ws", "b4", "wq"),
        helper.make_node("MatMul", ["xq", "wq"], ["y"]),
    ]
    save("non_power_of_two_input_scale", nodes, inits, [1, 16], [1, 8])
    # no quantizer at all (a float model)
    save(
        "float_model",
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [c("w", rng.normal(size=(16, 8)))],
        [1, 16],
        [1, 8],
    )
    # an op nobody registered, in a custom domain
    nodes = [quant("x", "s", "b8", "xq"), helper.make_node("MultiThreshold", ["xq", "thr"], ["y"], domain=D)]
    save(
        "multithreshold", nodes, [*base_inits(), c("thr", np.sort(rng.normal(size=(16, 3)), axis=1))], [1, 16], [1, 16]
    )
    # two inputs
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x2"], ["y"])],
        "two_inputs",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("x", "x2")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), HERE / "two_inputs.onnx")
    # malformed: truncated bytes, a dangling input, not ONNX at all
    full = (HERE / "mlp_unnamed.onnx").read_bytes()
    (HERE / "truncated.onnx").write_bytes(full[: len(full) // 2])
    nodes = [quant("x", "s", "b8", "xq"), helper.make_node("MatMul", ["xq", "missing"], ["y"])]
    save("dangling_input", nodes, base_inits(), [1, 16], [1, 8])
    (HERE / "not_onnx.onnx").write_text("this is not a model\n")
    brevitas_style_mlp()
    finn_bipolar_mlp()


def brevitas_style_mlp() -> None:
    """Brevitas's float-scale defaults: non-power-of-two input, per-channel weight and activation scales,
    a float bias, a float BatchNorm (some gammas negative) and Relu before an unsigned 4-bit quantizer."""
    n = 12
    inits = [c("z", 0.0), c("b8", 8.0), c("b4", 4.0), c("b2", 2.0), c("sin", 0.0371), c("w1", rng.normal(size=(16, n))),
             c("sw1", rng.uniform(0.01, 0.05, size=(1, n))), c("bias1", rng.normal(size=n)),
             c("g", rng.uniform(-1.5, 1.5, size=n)), c("be", rng.normal(size=n)), c("mu", rng.normal(size=n)),
             c("var", rng.uniform(0.5, 2, size=n)), c("sa", 0.173), c("w2", rng.normal(size=(n, 5))),
             c("sw2", 0.0213), c("bias2", rng.normal(size=5))]  # fmt: skip
    nodes = [
        quant("x", "sin", "b8", "xq"),
        quant("w1", "sw1", "b4", "w1q"),
        helper.make_node("MatMul", ["xq", "w1q"], ["h1"]),
        helper.make_node("Add", ["h1", "bias1"], ["h2"]),
        helper.make_node("BatchNormalization", ["h2", "g", "be", "mu", "var"], ["h3"], epsilon=1e-3),
        helper.make_node("Relu", ["h3"], ["h4"]),
        quant("h4", "sa", "b4", "a1", signed=0),
        quant("w2", "sw2", "b2", "w2q", narrow=1),
        helper.make_node("MatMul", ["a1", "w2q"], ["o1"]),
        helper.make_node("Add", ["o1", "bias2"], ["y"]),
    ]
    save("brevitas_style_mlp", nodes, inits, [1, 16], [1, 5])


def finn_bipolar_mlp() -> None:
    """FINN's 1W1A networks: {0, 1} inputs mapped to x * 2 - 1, bipolar weights with a scale, BatchNorm
    written as Sub/Div/Mul/Add before each BipolarQuant, and a TensorNorm-like float affine at the end."""
    n = 16
    inits = [c("two", 2.0), c("one", 1.0), c("w1", rng.normal(size=(24, n))), c("w2", rng.normal(size=(n, n))),
             c("w3", rng.normal(size=(n, 4))), c("ws", 0.75), c("mean1", rng.normal(size=n)),
             c("std1", rng.uniform(1, 4, size=n)), c("gamma1", rng.uniform(-1, 1, size=n)),
             c("beta1", rng.normal(size=n)), c("mean2", rng.normal(size=n)), c("std2", rng.uniform(1, 4, size=n)),
             c("tail_scale", rng.uniform(0.5, 2, size=4)), c("tail_bias", rng.normal(size=4))]  # fmt: skip
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["x2"]),
        helper.make_node("Sub", ["x2", "one"], ["xb"]),
        helper.make_node("BipolarQuant", ["xb", "one"], ["xq"], domain=D),
        helper.make_node("BipolarQuant", ["w1", "ws"], ["w1q"], domain=D),
        helper.make_node("MatMul", ["xq", "w1q"], ["h1"]),
        helper.make_node("Sub", ["h1", "mean1"], ["h2"]),
        helper.make_node("Div", ["h2", "std1"], ["h3"]),
        helper.make_node("Mul", ["h3", "gamma1"], ["h4"]),
        helper.make_node("Add", ["h4", "beta1"], ["h5"]),
        helper.make_node("BipolarQuant", ["h5", "one"], ["a1"], domain=D),
        helper.make_node("BipolarQuant", ["w2", "one"], ["w2q"], domain=D),
        helper.make_node("MatMul", ["a1", "w2q"], ["g1"]),
        helper.make_node("Sub", ["g1", "mean2"], ["g2"]),
        helper.make_node("Div", ["g2", "std2"], ["g3"]),
        helper.make_node("BipolarQuant", ["g3", "one"], ["a2"], domain=D),
        helper.make_node("BipolarQuant", ["w3", "one"], ["w3q"], domain=D),
        helper.make_node("MatMul", ["a2", "w3q"], ["o1"]),
        helper.make_node("Mul", ["o1", "tail_scale"], ["o2"]),
        helper.make_node("Add", ["o2", "tail_bias"], ["y"]),
    ]
    save("finn_bipolar_mlp", nodes, inits, [1, 24], [1, 4], opset=11)


if __name__ == "__main__":
    main()
