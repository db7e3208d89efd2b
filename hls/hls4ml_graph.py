"""The prepared graph as hls4ml 1.3.0's ONNX frontend reads it: qonnx's GemmToMatMul and channels-last
transforms, plus qfx's own rewrites, each a qonnx `Transformation` with one job."""

from __future__ import annotations

import re

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from qfx.exact import exact_format
from qfx.hls import ops
from qfx.hls.graph import QUANTIZERS, QonnxGraph
from qfx.hls.ops.quant import hls4ml_attributes, make_quant, native, per_channel


class QuantizeFloatConstants(Transformation):
    """An exact Quant node in front of every float constant that feeds a compute op unquantized (e.g. a
    float bias), so hls4ml types it exactly instead of at its default precision: the layers' constants
    (`elementwise=False`) before the channels-last conversion, which reads their shapes, and the constants of
    elementwise Mul and Add after it, which transposes a per-channel one only while it is an initializer."""

    def __init__(self, elementwise: bool) -> None:
        super().__init__()
        self.elementwise = elementwise

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        for node in list(graph.node):
            op = ops.REGISTRY.get(node.op_type)
            if op is None or not op.hls4ml_quantize_constants or (node.op_type in ("Mul", "Add")) != self.elementwise:
                continue
            for i, name in enumerate(node.input):
                value = model.get_initializer(name)
                if value is None:
                    continue
                fmt = exact_format(value, f"node {node.name} input {name}")
                quant = make_quant(model, name, f"{name}_qfx_exact", f"{name}_qfx_exact_quant", fmt)
                graph.node.insert(list(graph.node).index(node), quant)
                node.input[i] = f"{name}_qfx_exact"
        return model, False


class FoldConstantQuants(Transformation):
    """A constant behind a quantizer that hls4ml's Quant handling cannot express (per-channel scales; modes
    other than RND_CONV/TRN with SAT/SAT_SYM; bipolar weights) becomes its exactly quantized value, which
    `QuantizeFloatConstants` then types exactly (per-channel: the channels' union; the RTL keeps each
    value as narrow as it is)."""

    def __init__(self, graph: QonnxGraph) -> None:
        super().__init__()
        self.graph = graph

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type not in QUANTIZERS or not self.graph.is_constant(node.input[0]):
                continue
            # hls4ml types bipolar weights as 1-bit codes and leaves their layer's accumulator at its default
            if node.op_type == "BipolarQuant" or per_channel(node, self.graph) or not native(self.graph.format(node)):
                value = self.graph.constant(node.output[0])
                model.graph.node.remove(node)
                model.set_initializer(node.output[0], value.astype(np.float32))
        return model, False


class GemmZeroBias(Transformation):
    """A Gemm without its optional bias gets a zero one: qonnx 1.0's GemmToMatMul reads a Gemm's third
    input unconditionally (torch's dynamo exporter writes bias-free Linear layers so)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type == "Gemm" and (len(node.input) < 3 or not node.input[2]):
                zeros = f"{node.name}_zero_bias"
                model.set_initializer(zeros, np.zeros(model.get_tensor_shape(node.output[0])[-1], dtype=np.float32))
                if len(node.input) < 3:
                    node.input.append(zeros)
                else:
                    node.input[2] = zeros
        return model, False


class SqueezeBroadcastConstants(Transformation):
    """Drop leading unit dimensions of constants feeding Mul/Add (directly or through a Quant).

    Right-aligned broadcasting makes [1,1,1,C] and [C] the same; hls4ml's folding of Mul/Add by a
    constant broadcasts against the shape without the batch dimension and fails on the longer one.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type not in ("Mul", "Add"):
                continue
            for name in node.input:
                producer = model.find_producer(name)
                quantized = producer is not None and producer.op_type == "Quant"
                source = producer.input[0] if quantized else name
                value = model.get_initializer(source)
                if value is None or value.ndim <= 1:
                    continue
                squeezed = value.reshape(value.shape[next((i for i, d in enumerate(value.shape) if d != 1), -1) :])
                model.set_initializer(source, squeezed)
                if quantized:
                    model.set_tensor_shape(name, list(squeezed.shape))
        return model, False


class MergeTwinTransposes(Transformation):
    """Transposes of one tensor by the same permutation become one: qonnx's channels-last conversion gives
    each reader of a forked tensor its own, and hls4ml folds only one of those at the input into the input's
    layout (the other stays a Transpose layer that permutes already permuted data)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        seen: dict[tuple[str, tuple[int, ...]], onnx.NodeProto] = {}
        for node in model.graph.node:
            if node.op_type != "Transpose":
                continue
            key = (node.input[0], tuple(ops.attrs(node)["perm"]))
            first = seen.setdefault(key, node)
            if first is node:
                continue
            for consumer in model.find_consumers(node.output[0]) or []:
                consumer.input[list(consumer.input).index(node.output[0])] = first.output[0]
            model.graph.node.remove(node)
            return model, True
        return model, False


CHANNELS_LAST = {3: "NWC", 4: "NHWC"}  # qonnx's layout names, by rank


class ThresholdsChannelsLast(Transformation):
    """A MultiThreshold that qonnx's channels-last conversion left between transposes back to channels-first
    (it only converts the ops it knows) reads the channels-last tensor itself, and the transpose moves after
    it, where the conversion's cleanup cancels it against the next one."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            rank = len(model.get_tensor_shape(node.input[0]) or [])
            if node.op_type != "MultiThreshold" or rank not in CHANNELS_LAST:
                continue
            transpose = model.find_producer(node.input[0])
            to_first = [0, rank - 1, *range(1, rank - 1)]
            if transpose is None or transpose.op_type != "Transpose" or ops.attrs(transpose)["perm"] != to_first:
                continue
            if len(model.find_consumers(transpose.output[0])) != 1:
                continue
            out = node.output[0]
            node.input[0] = transpose.input[0]
            node.output[0] = model.make_new_valueinfo_name()
            model.set_tensor_shape(node.output[0], model.get_tensor_shape(transpose.input[0]))
            for a in [a for a in node.attribute if a.name == "data_layout"]:
                node.attribute.remove(a)
            node.attribute.append(onnx.helper.make_attribute("data_layout", CHANNELS_LAST[rank]))
            transpose.input[0], transpose.output[0] = node.output[0], out
            model.graph.node.remove(transpose)
            model.graph.node.insert(list(model.graph.node).index(node) + 1, transpose)
            return model, True
        return model, False


# Carries the prepared graph's node name through qonnx's cleanup in the node's doc_string (an attribute
# would make onnxruntime refuse a standard node when qonnx folds constants).
ORIGIN = "qfx_origin"


def hls4ml_name(node_name: str) -> str:
    """A node name as an hls4ml layer name (a C++ identifier fragment)."""
    name = re.sub(r"\W", "_", node_name).strip("_") or "node"
    return f"n_{name}" if name[0].isdigit() else name


class TagOrigins(Transformation):
    """Record which prepared-graph node each node comes from (qonnx's cleanup renames every
    node `<Op>_<n>`): the one that wrote the same output tensor, else the one its output feeds (GemmToMatMul
    splits a Gemm into a MatMul feeding an Add that keeps the Gemm's output)."""

    def __init__(self, graph: QonnxGraph) -> None:
        super().__init__()
        self.writer = {out: node.name for node in graph.nodes for out in node.output}

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        origins: dict[str, str] = {}  # by output tensor
        for node in reversed(model.graph.node):
            origin = self.writer.get(node.output[0])
            if origin is None:
                feeds = [c.output[0] for c in model.find_consumers(node.output[0])]
                origin = next((origins[out] for out in feeds if out in origins), None)
            if origin is not None:
                origins[node.output[0]] = origin
                node.doc_string = f"{ORIGIN}={origin}"
        return model, False


class RestoreNodeNames(Transformation):
    """Name each node after the prepared graph's node it came from, so hls4ml's layers carry the file's
    own names (and the synthesis report can attribute them); nodes qonnx added keep unclashing names."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        taken: set[str] = set()
        unnamed = []
        for node in model.graph.node:
            tagged = node.doc_string.startswith(f"{ORIGIN}=")
            name = hls4ml_name(node.doc_string.removeprefix(f"{ORIGIN}=")) if tagged else None
            if tagged:
                node.doc_string = ""
            if name is None or name in taken:  # a node qonnx added, or the second of a split node
                unnamed.append(node)
            else:
                node.name = name
                taken.add(name)
        for node in unnamed:
            name, n = node.name, 0
            while name in taken:
                n += 1
                name = f"{node.name}_{n}"
            node.name = name
            taken.add(name)
        return model, False


def for_hls4ml(graph: QonnxGraph) -> ModelWrapper:
    """A copy of the prepared graph transformed for hls4ml's ONNX frontend (see the module docstring).

    hls4ml-specific refusals (what it computes differently from the ONNX meaning) come first, per op.
    """
    ops.setup_hls4ml()
    for node in graph.nodes:
        ops.get(node).hls4ml_check(node, graph)
    model = ModelWrapper(onnx.ModelProto.FromString(graph.proto.SerializeToString()))
    model = model.transform(FoldConstantQuants(graph))
    for node in model.graph.node:
        if node.op_type == "Quant":
            hls4ml_attributes(node, graph.format(node))  # same names as in `graph`: nothing renamed yet
    model = model.transform(GemmZeroBias()).transform(GemmToMatMul()).transform(TagOrigins(graph))
    model = cleanup_model(cleanup_model(model).transform(QuantizeFloatConstants(elementwise=False)))
    model = model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=False))
    model = model.transform(ThresholdsChannelsLast())
    model = model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=False))
    model = model.transform(MergeTwinTransposes())
    model = cleanup_model(model.transform(QuantizeFloatConstants(elementwise=True)))
    model = cleanup_model(cleanup_model(model).transform(SqueezeBroadcastConstants()))
    return model.transform(RestoreNodeNames())
