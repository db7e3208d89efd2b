"""The host's part of a model: float preprocessing between the input and the first quantizer (x*2-1,
(x-mean)/std) and float ops after the last exact tensor (Softmax, ArgMax, a division), split off the design
and run in float32 by onnxruntime exactly as the ONNX does, as FINN splits a model into its dataflow part
and a parent model. The design in between is what qfx converts and proves bit-exact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx.utils import Extractor
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.general import RemoveUnusedTensors

from qfx.fixed import FixedFormat
from qfx.hls import ops
from qfx.hls.graph import QUANTIZERS, QonnxGraph, preparation
from qfx.hls.ops.quant import make_quant
from qfx.hls.scales import needs_thresholds

HEAD = "head.onnx"
TAIL = "tail.onnx"
TAIL_MODES = ("auto", "host", "hw")
# Elementwise float ops by a constant that preprocessing is made of (Brevitas, FINN and hls4ml examples).
HEAD_OPS = ("Sub", "Div", "Mul", "Add")
HEAD_RESHAPES = ("Reshape", "Flatten")
STANDARD = ("", "ai.onnx")


@dataclass
class Split:
    """A model cut in three: host head (or None), the design, host tail (or None)."""

    head: onnx.ModelProto | None
    body: onnx.ModelProto
    tail: onnx.ModelProto | None

    def describe(self) -> dict:
        """What qfx.json records: each host part's file and ops (None where there is none)."""
        return {"head": _part(self.head, HEAD), "tail": _part(self.tail, TAIL)}


def _part(model: onnx.ModelProto | None, file: str) -> dict | None:
    return None if model is None else {"file": file, "ops": [n.op_type for n in model.graph.node]}


def _constant(model: ModelWrapper, tensor: str) -> bool:
    return model.get_initializer(tensor) is not None


def head_nodes(model: ModelWrapper) -> list[onnx.NodeProto]:
    """The chain of elementwise float ops by constants and reshapes (FINN's MNIST models flatten the image
    first) from the graph input to the first quantizer."""
    chain: list[onnx.NodeProto] = []
    tensor = model.graph.input[0].name
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1:
            return []
        node = consumers[0]
        if node.op_type == "BipolarQuant":  # the sign is taken on the host: the port carries +-1 exactly
            return [*chain, node]
        if node.op_type in QUANTIZERS:
            return chain
        others = [i for i in node.input if i != tensor]
        allowed = (*HEAD_OPS, *HEAD_RESHAPES)
        if node.op_type not in allowed or node.domain not in STANDARD or not all(_constant(model, i) for i in others):
            return []
        chain.append(node)
        tensor = node.output[0]


def _exact(node: onnx.NodeProto) -> bool:
    op = ops.REGISTRY.get(node.op_type)
    return op is not None and op.exact


def _float_affine(model: ModelWrapper, node: onnx.NodeProto) -> bool:
    """A BatchNorm, or a Mul, Div, Add or Sub by a plain float constant: exact in fixed point, but after a
    float scale it is float arithmetic that only float32 reproduces."""
    return node.op_type == "BatchNormalization" or (
        node.op_type in HEAD_OPS and any(_constant(model, i) for i in node.input)
    )


def tail_nodes(model: ModelWrapper) -> list[onnx.NodeProto]:
    """The float ops at the end, in graph order (standard ONNX ops onnxruntime runs, each with one variable
    input): from the first that has no exact fixed-point meaning, or is float arithmetic fixed point cannot
    do cheaply (a Brevitas output scale, a float BatchNorm), to the output, with the float affines between."""
    chain: list[onnx.NodeProto] = []
    tensor = model.graph.output[0].name
    while True:
        node = model.find_producer(tensor)
        if (
            node is None
            or (_exact(node) and not _float_affine(model, node))
            or node.domain not in STANDARD
            or len(model.find_consumers(tensor) or []) > 1
        ):
            break
        variables = [i for i in node.input if i and not _constant(model, i)]
        if len(variables) != 1:
            break
        chain.append(node)
        tensor = variables[0]
    chain.reverse()
    first = next((n for n, node in enumerate(chain) if not _exact(node) or needs_thresholds(model, [node])), None)
    return [] if first is None else chain[first:]


def _extract(proto: onnx.ModelProto, inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    """The sub-model between `inputs` and `outputs` (onnx's Extractor), whose new inputs and outputs are
    not also listed as intermediate tensors (qonnx asserts each tensor has one description)."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    del proto.graph.quantization_annotation[:]  # qonnx's data-type notes, which onnx's Extractor refuses
    part = Extractor(proto).extract_model(inputs, outputs)
    ends = {v.name for v in (*part.graph.input, *part.graph.output)}
    kept = [v for v in part.graph.value_info if v.name not in ends]
    del part.graph.value_info[:]
    part.graph.value_info.extend(kept)
    return part


def split(model: ModelWrapper, tail: str = "auto") -> Split:
    """Cut the (shape-inferred) model. `tail`: auto and host split a float tail off; hw keeps it in the
    design, where the converter refuses what has no exact meaning, naming the node."""
    if tail not in TAIL_MODES:
        raise ValueError(f"tail {tail!r} is not one of {', '.join(TAIL_MODES)}")
    proto = model.model
    head, tail_chain = head_nodes(model), (tail_nodes(model) if tail != "hw" else [])
    start = head[-1].output[0] if head else model.graph.input[0].name
    end = next(i for i in tail_chain[0].input if not _constant(model, i)) if tail_chain else model.graph.output[0].name
    if model.find_producer(end) is None or model.find_producer(end) in head:
        raise ValueError(f"the model has no quantized part between {start} and {end}: nothing to convert")
    body = _extract(proto, [start], [end]) if (head or tail_chain) else proto
    head_model = _extract(proto, [model.graph.input[0].name], [start]) if head else None
    tail_model = _extract(proto, [end], [model.graph.output[0].name]) if tail_chain else None
    body = ModelWrapper(body).transform(RemoveUnusedTensors())
    if head and head[-1].op_type == "BipolarQuant":
        _port_quant(body)
    return Split(head_model, body.model, tail_model)


def _port_quant(model: ModelWrapper) -> None:
    """The design's input port for the +-1 a host-side BipolarQuant sends: a Quant to ap_fixed<2,2> (exact
    on +-1), so the port's type is a quantizer's, as everywhere else."""
    port = model.graph.input[0].name
    inner = f"{port}_bipolar"
    for node in model.find_consumers(port) or []:
        node.input[list(node.input).index(port)] = inner
    model.graph.node.insert(0, make_quant(model, port, inner, f"{port}_port", FixedFormat(2, 2, True)))
    model.set_tensor_shape(inner, model.get_tensor_shape(port))


def prepared_split(proto: onnx.ModelProto, tail: str = "auto") -> tuple[Split, QonnxGraph]:
    """The model cut as `split` cuts it, after the preparation (shapes inferred, constants folded), and
    the design part as the prepared graph every stage reads."""
    model = ModelWrapper(onnx.ModelProto.FromString(proto.SerializeToString()))
    for transformation in preparation():
        model = model.transform(transformation)
    parts = split(model, tail)
    return parts, QonnxGraph.prepare(parts.body)


def run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    """A host part on a batch, in float32 as onnxruntime computes it (what the ONNX file means); a part
    with a QONNX op (a BipolarQuant taking the input's sign) runs in qonnx's executor, which runs the
    standard ops through onnxruntime too."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    shape = [d.dim_value or 1 for d in proto.graph.input[0].type.tensor_type.shape.dim]
    x = np.asarray(x, dtype=np.float32).reshape(len(x), *shape[1:])
    name = proto.graph.input[0].name
    # one call per sample: the file's batch dimension is often fixed at 1
    if all(n.domain in STANDARD for n in proto.graph.node):
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    wrapped, out = ModelWrapper(proto), proto.graph.output[0].name
    return np.concatenate([execute_onnx(wrapped, {name: x[i : i + 1]})[out] for i in range(len(x))])
