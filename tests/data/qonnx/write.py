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


if __name__ == "__main__":
    main()
