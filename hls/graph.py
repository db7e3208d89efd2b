"""The prepared graph: a (Q)ONNX model read once, cleaned once, every node named and every omitted
attribute filled in, which the emulator, the converter, the tracer and the estimator all read.

Preparation is a sequence of qonnx `Transformation`s, one job each; nothing downstream keys on a name
the input file may lack.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveUniqueParameterTensors,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
    SortGraph,
)
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

from qfx.fixed import FixedFormat
from qfx.hls import ops

QUANTIZERS = ("Quant", "BipolarQuant")


QONNX_DOMAIN = "qonnx.custom_op.general"
QONNX_OPS = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")


class NormalizeDomains(Transformation):
    """Custom ops as qonnx reads them: the legacy `finn` and `finn.custom_op.general` domains renamed (by
    qonnx's own ModelWrapper), qonnx ops written without a domain put in qonnx's (as its cleanup does), and
    an opset import for every custom domain used (FINN and Brevitas files and qonnx's own saves lack it,
    and ONNX's checker refuses a node of an undeclared domain)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.temporary_fix_oldstyle_domain()
        for node in model.graph.node:
            if node.op_type in QONNX_OPS and node.domain in ("", "ai.onnx"):
                node.domain = QONNX_DOMAIN
        declared = {o.domain for o in model.model.opset_import}
        for domain in sorted({n.domain for n in model.graph.node} - declared - {"", "ai.onnx"}):
            model.model.opset_import.append(onnx.helper.make_opsetid(domain, 1))
        return model, False


def parse(data: bytes, where: str) -> onnx.ModelProto:
    """Decode and check ONNX bytes; any defect is a ValueError naming `where` (a file, an upload)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # qonnx warns that it renamed old-style domains: that is the point
            model = ModelWrapper(onnx.load_from_string(data))
        proto = _sorted(NormalizeDomains().apply(model)[0].model)
        onnx.checker.check_model(proto)
    except Exception as e:  # protobuf's DecodeError and onnx's ValidationError share no base
        reason = str(e).splitlines()[0][:200] if str(e) else repr(e)
        raise ValueError(f"{where}: not a valid ONNX model ({reason})") from None
    if not proto.graph.node:
        raise ValueError(f"{where}: the graph has no nodes")
    return proto


def _sorted(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The nodes in topological order (qonnx reads files that list them in any order; ONNX's checker does not)."""
    try:
        return SortGraph().apply(ModelWrapper(proto))[0].model
    except Exception:  # a graph too broken to sort: the checker says what is wrong with it
        return proto


def load(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file; any defect is a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return parse(path.read_bytes(), str(path))


class ConstantsToInitializers(Transformation):
    """`Constant` nodes (weights, shapes, scales, bit widths) become initializers.

    qonnx's FoldConstants reads every node's first input and fails on a node that has none.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        changed = False
        for node in [n for n in model.graph.node if n.op_type == "Constant"]:
            value = ops.attrs(node)
            if "value" not in value:
                raise ValueError(f"node {node.name or '(unnamed)'}: Constant without a tensor `value` is not supported")
            model.set_initializer(node.output[0], numpy_helper.to_array(value["value"]))
            model.graph.node.remove(node)
            changed = True
        return model, changed


class NameNodes(Transformation):
    """Every node gets a unique name: the file's own where it has one, `<OpType>_<n>` otherwise."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        taken = {n.name for n in model.graph.node if n.name}
        seen: set[str] = set()
        counts: dict[str, int] = {}
        for node in model.graph.node:
            if node.name and node.name not in seen:
                seen.add(node.name)
                continue
            base = node.name or node.op_type
            while True:
                counts[base] = counts.get(base, -1) + 1
                name = f"{base}_{counts[base]}"
                if name not in taken and name not in seen:
                    break
            node.name = name
            seen.add(name)
        return model, False


class FillDefaultAttributes(Transformation):
    """Attributes a legal file may omit (Conv's strides, pads, dilations, group; Flatten's axis...) are
    written out with ONNX's defaults, as each op module declares them, where the model's opset knows them."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        opset = next((o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")), 13)
        for node in model.graph.node:
            op = ops.REGISTRY.get(node.op_type)
            if op is None:
                continue
            # a standard op gets only the attributes its opset defines (ONNX's checker refuses others)
            standard = node.domain in ("", "ai.onnx")
            known = onnx.defs.get_schema(node.op_type, opset, "").attributes if standard else op.defaults
            present = {a.name for a in node.attribute}
            for name, default in op.defaults.items():
                if name not in present and name in known:
                    value = default(node, model) if callable(default) else default
                    node.attribute.append(onnx.helper.make_attribute(name, value))
        return model, False


class LowerOps(Transformation):
    """Nodes whose op module lowers them (`Op.lower`) are replaced by the exact equivalent it gives."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            op = ops.REGISTRY.get(node.op_type)
            lowered = op.lower(node, model) if op is not None else None
            if lowered is None:
                continue
            at = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            for n, new in enumerate(lowered):
                model.graph.node.insert(at + n, new)
        return model, False


def preparation() -> list[Transformation]:
    """The transformations that turn any legal (Q)ONNX file into the prepared graph, in order."""
    from qfx.hls import scales  # scales reads the graph through QonnxGraph, defined here

    return [
        ConstantsToInitializers(),
        InferShapes(),
        GiveUniqueParameterTensors(),
        FoldConstants(exclude_op_types=list(QUANTIZERS)),
        FoldTransposeIntoQuantInit(),  # a weight written as Transpose(Quant(W)) (FINN's CNV)
        RemoveUnusedTensors(),
        RemoveStaticGraphInputs(),
        NameNodes(),
        scales.ExtractScales(),
        scales.MoveScales(),
        LowerOps(),
        InferShapes(),
        FillDefaultAttributes(),
        scales.Streamline(),
        RemoveUnusedTensors(),
        InferShapes(),
    ]


class QonnxGraph:
    """A prepared graph and what every stage asks of it: constants, producers, shapes, Quant formats."""

    def __init__(self, model: ModelWrapper) -> None:
        self.model = model
        self._formats: dict[str, FixedFormat] = {}

    @classmethod
    def prepare(cls, proto: onnx.ModelProto) -> QonnxGraph:
        """Run the preparation on a checked ModelProto (see `load`); unknown ops are refused by name."""
        model = ModelWrapper(onnx.ModelProto.FromString(proto.SerializeToString()))
        for t in preparation():
            model = model.transform(t)
        graph = cls(model)
        for node in graph.nodes:
            ops.get(node)
        if len(model.graph.input) != 1:
            names = ", ".join(i.name for i in model.graph.input)
            raise ValueError(f"the graph has {len(model.graph.input)} inputs ({names}); qfx takes one")
        if len(model.graph.output) != 1:
            names = ", ".join(o.name for o in model.graph.output)
            raise ValueError(f"the graph has {len(model.graph.output)} outputs ({names}); qfx takes one")
        return graph

    @property
    def proto(self) -> onnx.ModelProto:
        return self.model.model

    @property
    def nodes(self) -> list[onnx.NodeProto]:
        return list(self.model.graph.node)

    @property
    def input_name(self) -> str:
        return self.model.graph.input[0].name

    @property
    def output_name(self) -> str:
        return self.model.graph.output[0].name

    def shape(self, tensor: str) -> list[int]:
        """A tensor's shape with the batch dimension as stored (1 in the graph; it stands for any batch)."""
        shape = self.model.get_tensor_shape(tensor)
        if shape is None:
            raise ValueError(f"tensor {tensor}: no shape (shape inference failed)")
        return [int(d) if d else 1 for d in shape]

    def initializer(self, tensor: str) -> np.ndarray | None:
        value = self.model.get_initializer(tensor)
        return None if value is None else np.array(value, dtype=np.float64)  # a copy: torch wants it writable

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return self.model.find_producer(tensor)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return self.model.find_consumers(tensor) or []

    def is_constant(self, tensor: str) -> bool:
        """An initializer, or one behind a Quant node (a quantized weight or bias)."""
        if not tensor:
            return False
        if self.model.get_initializer(tensor) is not None:
            return True
        producer = self.producer(tensor)
        return producer is not None and producer.op_type in QUANTIZERS and self.is_constant(producer.input[0])

    def constant(self, tensor: str) -> np.ndarray | None:
        """The value of a constant tensor, through a Quant node (applied exactly) if one produces it."""
        value = self.initializer(tensor)
        if value is not None:
            return value
        producer = self.producer(tensor)
        if producer is None or producer.op_type not in QUANTIZERS:
            return None
        inner = self.constant(producer.input[0])
        if inner is None:
            return None
        if producer.op_type == "BipolarQuant":
            return np.where(inner >= 0, 1.0, -1.0)
        return ops.quant.quantize_constant(producer, self, torch.from_numpy(inner)).numpy()

    def format(self, node: onnx.NodeProto) -> FixedFormat:
        """The ap_fixed type of a Quant node (read once), or a ValueError naming the node."""
        if node.name not in self._formats:
            self._formats[node.name] = ops.quant.read_format(node, self)
        return self._formats[node.name]

    def bits(self, tensor: str) -> int | None:
        """The bit width of the quantizer producing `tensor`, if a Quant node does."""
        producer = self.producer(tensor)
        if producer is None or producer.op_type not in QUANTIZERS:
            return None
        if producer.op_type == "BipolarQuant":
            return 1
        bits = self.initializer(producer.input[3])
        return int(bits.item()) if bits is not None and bits.size == 1 else None

    def size(self, tensor: str) -> int:
        """Elements of one sample of `tensor`."""
        return math.prod(self.shape(tensor)[1:]) or 1

    def k_hot(self, tensor: str) -> int:
        """qfx's K-hot limit on the weights behind `tensor` (0 when they are plain fixed point)."""
        producer = self.producer(tensor)
        if producer is None or producer.op_type != "Quant":
            return 0
        return int(ops.attrs(producer).get("qfx_k_hot", 0))

    def input_format(self) -> FixedFormat:
        """The format of the model's first quantizer: what the hardware's input port carries."""
        consumers = self.consumers(self.input_name)
        if not consumers or consumers[0].op_type != "Quant":
            raise ValueError(f"tensor {self.input_name}: the graph input does not go into a Quant node")
        return self.format(consumers[0])

    def check_exact(self) -> None:
        """Every node has an exact meaning qfx can prove: refused naming the first node that has none."""
        for node in self.nodes:
            op = ops.get(node)
            if not op.exact:
                raise ValueError(
                    f"node {node.name}: op type {node.op_type} is not supported: it has no exact fixed-point "
                    f"implementation yet (supported: {', '.join(ops.supported_ops())})"
                )
            op.check(node, self)
        consumers = self.consumers(self.input_name)
        for consumer in consumers:
            if consumer.op_type not in QUANTIZERS:
                raise ValueError(
                    f"tensor {self.input_name}: the input feeds {consumer.op_type} node {consumer.name} "
                    "unquantized; put a Quant node on it"
                )
        if len(consumers) != 1:
            names = ", ".join(c.name for c in consumers)
            raise ValueError(
                f"tensor {self.input_name}: the input feeds {len(consumers)} quantizers ({names}); the hardware "
                "port carries one format, so quantize the input once"
            )
        self.input_format()

    def save(self, path: str | Path) -> None:
        onnx.save(self.proto, str(path))
