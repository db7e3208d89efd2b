"""Scales and float affines as Brevitas and FINN write them, made exact in the prepared graph (FINN calls
this streamlining): non-power-of-two scales are pulled out of quantizers as float Muls, moved forward past
linear layers until they cancel or meet the next quantizer, and the float ops in front of a quantizer
(scale, bias, BatchNorm, Div, Sub, Relu) become that quantizer's exact integer thresholds (MultiThreshold).

Thresholds follow the real-valued meaning of the float parameters: each level boundary is found on the
grid of the exact tensor before the float ops, evaluating the ops in float64 (correctly rounded per op;
qonnx's executor evaluates them in float32 and can only differ where its own rounding crosses a level).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import onnx
import torch
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from qfx.hls import ops
from qfx.hls.graph import QonnxGraph
from qfx.hls.ops import Bounds
from qfx.hls.ops.batchnorm import scale_bias
from qfx.hls.ops.quant import read_format

QONNX_DOMAIN = "qonnx.custom_op.general"
# Elementwise float ops by a constant that a quantizer's thresholds can absorb.
AFFINE_OPS = ("Mul", "Div", "Add", "Sub", "BatchNormalization", "Relu")
# Layers whose weights' scales move to their output; ops a positive scalar scale moves past unchanged.
WEIGHTED = {"MatMul": 1, "Gemm": 1, "Conv": 1}
SCALE_INVARIANT = ("MatMul", "Gemm", "Conv", "Reshape", "Flatten", "Transpose", "Identity", "MaxPool", "Relu",
                   "AveragePool", "GlobalAveragePool", "GlobalMaxPool")  # fmt: skip
# More levels than this make thresholds a poor circuit (2^12 comparators per channel): refused.
MAX_STEPS = 4095
# qonnx's MultiThreshold layout for the prepared graph's channel-first tensors, by rank.
LAYOUT = {2: "NC", 3: "NCW", 4: "NCHW"}


def power_of_two(values: np.ndarray) -> bool:
    v = np.asarray(values, dtype=np.float64)
    return v.size > 0 and bool(np.all(v > 0)) and bool(np.all(np.frexp(v)[0] == 0.5))


def _uniform_power_of_two(values: np.ndarray) -> bool:
    return power_of_two(values) and np.unique(values).size == 1


def _fresh(model: ModelWrapper, base: str) -> str:
    """`base`, or `base_<n>`, whichever no node or tensor of the model is called yet."""
    graph = model.graph
    taken = {n.name for n in graph.node} | {t for n in graph.node for t in (*n.input, *n.output)}
    taken |= {t.name for t in (*graph.initializer, *graph.input, *graph.output, *graph.value_info)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _constant(model: ModelWrapper, name: str, value: np.ndarray) -> str:
    """A new float32 initializer named after `name`; its name."""
    name = _fresh(model, name)
    model.set_initializer(name, np.asarray(value, dtype=np.float32))
    return name


def _insert_after(model: ModelWrapper, anchor: onnx.NodeProto, new: list[onnx.NodeProto]) -> None:
    at = list(model.graph.node).index(anchor) + 1
    for n, node in enumerate(new):
        model.graph.node.insert(at + n, node)


def _unit_scale(model: ModelWrapper, node: onnx.NodeProto) -> None:
    node.input[1] = _constant(model, f"{node.name}_unit_scale", np.array(1.0))


def quant_value(model: ModelWrapper, node: onnx.NodeProto) -> np.ndarray:
    """A constant through a Quant or BipolarQuant with any scale, as qonnx computes it: the levels of
    x / scale in float32, times the scale in float32."""
    x = np.asarray(model.get_initializer(node.input[0]), dtype=np.float32)
    scale = np.asarray(model.get_initializer(node.input[1]), dtype=np.float32)
    return (levels(model, node, x / scale).astype(np.float32) * scale).astype(np.float32)


def levels(model: ModelWrapper, node: onnx.NodeProto, unscaled: np.ndarray) -> np.ndarray:
    """A quantizer's integer levels (Quant) or signs (BipolarQuant) of values already divided by its scale."""
    if node.op_type == "BipolarQuant":
        return np.where(unscaled >= 0, 1.0, -1.0)
    fmt = read_format(node, _Constants(model), scale=np.array(1.0))
    return fmt.quantize(torch.from_numpy(np.asarray(unscaled, dtype=np.float64))).numpy()


class _Constants:
    """The part of the prepared graph's interface `read_format` uses, on a ModelWrapper being prepared."""

    def __init__(self, model: ModelWrapper) -> None:
        self.model = model

    def initializer(self, tensor: str) -> np.ndarray | None:
        value = self.model.get_initializer(tensor)
        return None if value is None else np.asarray(value, dtype=np.float64)


def _output_scale(node: onnx.NodeProto, layer: onnx.NodeProto, scale: np.ndarray, shape: list[int]) -> np.ndarray:
    """A weight's scale as one factor per output channel of its layer (shaped to broadcast over the layer's
    output), or a ValueError: a scale that varies along the summed axis cannot leave the sum."""
    w = np.broadcast_to(scale, shape)
    if layer.op_type == "Conv":
        per = w.reshape(shape[0], -1)  # [out channels, in channels x kernel]
    else:
        per = w if layer.op_type == "Gemm" and ops.attrs(layer).get("transB", 0) else w.T  # [out, in]
    if not np.all(per == per[:, :1]):
        raise ValueError(
            f"node {node.name}: the weight scale of {layer.op_type} node {layer.name} varies along the summed "
            "axis; only one scale per output channel can leave the sum exactly"
        )
    factors = per[:, 0]
    return factors.reshape(-1, *[1] * (len(shape) - 2)) if layer.op_type == "Conv" else factors


class ExtractScales(Transformation):
    """Quantizers with a scale that is not one power of two become a quantizer to integer levels plus
    float ops: activations Div(x, s) -> Quant(scale 1) -> Mul(s) (qonnx's ExtractQuantScaleZeroPt does the
    same); weights become integer weights and their scale a Mul after the layer (with the bias, if the
    layer had one, added after it); other constants become their float value; Trunc as activations."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type not in ("Quant", "BipolarQuant", "Trunc") or len(node.input) < 2:
                continue
            scale = model.get_initializer(node.input[1])
            if scale is None or (node.op_type == "BipolarQuant" and np.all(scale == 1)):
                continue
            constant = node.op_type != "Trunc" and model.get_initializer(node.input[0]) is not None
            if node.op_type != "BipolarQuant" and (
                _uniform_power_of_two(scale) or (constant and power_of_two(scale))
            ):  # one binary point, or one per channel of a constant (each channel its own format)
                continue
            if not np.all(np.asarray(scale) > 0):
                raise ValueError(f"node {node.name}: scale {np.ravel(scale)[:4].tolist()} is not positive")
            if constant:
                self._constant(model, node, np.asarray(scale))
            else:
                self._activation(model, node, np.asarray(scale))
            return model, True
        return model, False

    @staticmethod
    def _activation(model: ModelWrapper, node: onnx.NodeProto, scale: np.ndarray) -> None:
        s = _constant(model, f"{node.name}_scale", scale)
        out = node.output[0]
        node.output[0] = _fresh(model, f"{node.name}_levels")
        if node.op_type != "BipolarQuant":  # the sign of x / s is the sign of x
            unscaled = _fresh(model, f"{node.name}_unscaled")
            div = helper.make_node("Div", [node.input[0], s], [unscaled], name=_fresh(model, f"{node.name}_unscale"))
            model.graph.node.insert(list(model.graph.node).index(node), div)
            node.input[0] = unscaled
        if node.op_type == "Trunc" and len(node.input) == 6:  # v2: the output scale relative to the input's
            ratio = np.asarray(model.get_initializer(node.input[4]), dtype=np.float64) / scale
            node.input[4] = _constant(model, f"{node.name}_step", ratio)
        _unit_scale(model, node)
        _insert_after(
            model,
            node,
            [helper.make_node("Mul", [node.output[0], s], [out], name=_fresh(model, f"{node.name}_rescale"))],
        )

    @staticmethod
    def _constant(model: ModelWrapper, node: onnx.NodeProto, scale: np.ndarray) -> None:
        consumers = model.find_consumers(node.output[0]) or []
        layer = consumers[0] if len(consumers) == 1 else None
        if layer is None or layer.op_type not in WEIGHTED or layer.input[1] != node.output[0]:
            model.set_initializer(node.output[0], quant_value(model, node))  # e.g. a bias: a float constant
            model.graph.node.remove(node)
            return
        w = np.asarray(model.get_initializer(node.input[0]), dtype=np.float32)
        factors = _output_scale(node, layer, scale, list(w.shape))
        node.input[0] = _constant(model, f"{node.name}_unscaled", w / scale.astype(np.float32))
        _unit_scale(model, node)
        out = layer.output[0]
        layer.output[0] = _fresh(model, f"{layer.name}_sum")
        model.set_tensor_shape(layer.output[0], model.get_tensor_shape(out))
        new = [helper.make_node("Mul", [layer.output[0], _constant(model, f"{node.name}_scale", factors)],
                                [out], name=_fresh(model, f"{node.name}_rescale"))]  # fmt: skip
        if len(layer.input) > 2 and layer.input[2]:
            bias = model.get_initializer(layer.input[2])
            producer = model.find_producer(layer.input[2])
            if bias is None and producer is not None and producer.op_type == "Quant":
                bias = quant_value(model, producer)
            if bias is None:
                raise ValueError(f"node {layer.name}: its bias must be a constant")
            shape = factors.shape if layer.op_type == "Conv" else np.shape(bias)
            b = _constant(model, f"{layer.name}_float_bias", np.asarray(bias).reshape(shape))
            new[0].output[0] = _fresh(model, f"{layer.name}_scaled")
            model.set_tensor_shape(new[0].output[0], model.get_tensor_shape(out))
            new.append(helper.make_node("Add", [new[0].output[0], b], [out], name=_fresh(model, f"{layer.name}_bias")))
            _drop_bias(model, layer)
        _insert_after(model, layer, new)


def _float_constant(model: ModelWrapper, node: onnx.NodeProto) -> tuple[int, np.ndarray] | None:
    """(index of the variable input, the constant) of a binary node by a plain initializer."""
    if len(node.input) != 2:
        return None
    values = [model.get_initializer(i) for i in node.input]
    if (values[0] is None) == (values[1] is None):
        return None
    at = 0 if values[1] is not None else 1
    return at, np.asarray(values[1 - at], dtype=np.float64)


def _single_consumer(model: ModelWrapper, tensor: str) -> onnx.NodeProto | None:
    consumers = model.find_consumers(tensor) or []
    outputs = {o.name for o in model.graph.output}
    return consumers[0] if len(consumers) == 1 and tensor not in outputs else None


def scale_constant(model: ModelWrapper, node: onnx.NodeProto) -> np.ndarray | None:
    """The constant of a Mul by a plain initializer that is not a power of two (a scale qfx moves)."""
    found = _float_constant(model, node) if node.op_type == "Mul" else None
    if found is None or found[0] != 0 or power_of_two(found[1]):
        return None
    return found[1]


def _shift(model: ModelWrapper, node: onnx.NodeProto) -> bool:
    """A Mul by a power of two (exact in fixed point, so a scale moves past it)."""
    found = _float_constant(model, node) if node.op_type == "Mul" else None
    return found is not None and found[0] == 0 and power_of_two(found[1])


def _binary_fraction(values: np.ndarray) -> np.ndarray | None:
    """Exact rationals as float32 where each is a binary fraction a float32 holds; None where one is not."""
    out = np.vectorize(float, otypes=[np.float64])(values).astype(np.float32)
    exact = np.vectorize(lambda f, v: Fraction(float(f)) == v, otypes=[bool])(out, values)
    return out if exact.all() else None


def _scaling_run(model: ModelWrapper, node: onnx.NodeProto) -> list[tuple[onnx.NodeProto, np.ndarray]]:
    """The consecutive Muls and Divs by plain constants starting at `node` (each output used only by the next)."""
    run = []
    while node is not None and node.op_type in ("Mul", "Div"):
        found = _float_constant(model, node)
        if found is None or found[0] != 0:
            break
        run.append((node, found[1]))
        node = _single_consumer(model, node.output[0])
    return run


class MoveScales(Transformation):
    """A non-power-of-two scalar scale moves forward past a layer or a scale-invariant op (the layer's bias
    then follows it), two equal scales past the Add of both, into each branch of a fork, and a scale next
    to a Mul or Div by a constant merges with it where their exact product is a binary fraction (a scale
    and its inverse cancel)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            c = scale_constant(model, node)
            if c is not None and self._fork(model, node):
                return model, True
            after = _single_consumer(model, node.output[0]) if c is not None else None
            if after is None:
                continue
            if self._merge(model, node) or self._past(model, node, c, after):
                return model, True
        return model, False

    @staticmethod
    def _fork(model: ModelWrapper, node: onnx.NodeProto) -> bool:
        """A scale read by several nodes becomes one copy per reader, so each copy moves on its own."""
        consumers = model.find_consumers(node.output[0]) or []
        if len(consumers) < 2 or node.output[0] in {o.name for o in model.graph.output}:
            return False
        for n, consumer in enumerate(consumers[1:], start=1):
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name, copy.output[0] = _fresh(model, f"{node.name}_{n}"), _fresh(model, f"{node.output[0]}_{n}")
            consumer.input[list(consumer.input).index(node.output[0])] = copy.output[0]
            model.set_tensor_shape(copy.output[0], model.get_tensor_shape(node.output[0]))
            _insert_after(model, node, [copy])
        return True

    @staticmethod
    def _merge(model: ModelWrapper, node: onnx.NodeProto) -> bool:
        """The longest run of scalings from `node` whose exact product is a float32 binary fraction becomes
        one Mul by it (nothing where it is 1): a scale moved next to its inverse cancels."""
        run = _scaling_run(model, node)
        for end in range(len(run), 1, -1):
            shape = np.broadcast_shapes(*[np.shape(c) for _, c in run[:end]])
            product = np.full(shape, Fraction(1), dtype=object)
            for n, c in run[:end]:
                f = np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(np.broadcast_to(c, shape))
                product = product / f if n.op_type == "Div" else product * f
            value = _binary_fraction(product)
            if value is None:
                continue
            last = run[end - 1][0]
            for n, _ in run[: end - 1]:
                model.graph.node.remove(n)
                _forget(model, n.output[0])
            last.input[0] = node.input[0]
            if np.all(value == 1) and last.output[0] not in {o.name for o in model.graph.output}:
                for consumer in model.find_consumers(last.output[0]) or []:
                    consumer.input[list(consumer.input).index(last.output[0])] = node.input[0]
                model.graph.node.remove(last)
                _forget(model, last.output[0])
            elif np.all(value == 1):
                last.op_type = "Identity"
                del last.input[1]
            else:
                last.op_type = "Mul"
                last.input[1] = _constant(model, f"{last.name}_merged", value)
            return True
        return False

    @staticmethod
    def _past(model: ModelWrapper, node: onnx.NodeProto, c: np.ndarray, after: onnx.NodeProto) -> bool:
        scaled = [node]
        if after.op_type == "Add":  # a residual sum of two equally scaled tensors
            other = next(i for i in after.input if i != node.output[0])
            twin = model.find_producer(other)
            twin_scale = scale_constant(model, twin) if twin is not None else None
            if twin_scale is None or not np.array_equal(twin_scale, c) or _single_consumer(model, other) is None:
                return False
            scaled.append(twin)
        elif (
            not (after.op_type in SCALE_INVARIANT or _shift(model, after))
            or after.input[0] != node.output[0]
            or np.size(c) != 1
            or float(np.ravel(c)[0]) <= 0
        ):
            return False
        for mul in scaled:
            after.input[list(after.input).index(mul.output[0])] = mul.input[0]
            _forget(model, mul.output[0])
        for mul in scaled[1:]:
            model.graph.node.remove(mul)
        out = after.output[0]
        after.output[0] = _fresh(model, f"{after.name}_unscaled")
        model.set_tensor_shape(after.output[0], model.get_tensor_shape(out))
        model.graph.node.remove(node)
        node.input[0], node.output[0] = after.output[0], out
        moved = [node]
        has_bias = after.op_type in ("Gemm", "Conv") and len(after.input) > 2 and bool(after.input[2])
        bias = QonnxGraph(model).constant(after.input[2]) if has_bias else None
        if has_bias and bias is None:
            raise ValueError(f"node {after.name}: its bias must be a constant")
        if bias is not None and np.any(bias):  # a zero bias stays where it is
            # the bias now adds after the scale: s * (x W) + b
            if after.op_type == "Conv":
                bias = np.reshape(bias, (-1, *[1] * (len(model.get_tensor_shape(out)) - 2)))
            node.output[0] = _fresh(model, f"{node.name}_moved")
            model.set_tensor_shape(node.output[0], model.get_tensor_shape(out))
            b = _constant(model, f"{after.name}_float_bias", bias)
            moved.append(helper.make_node("Add", [node.output[0], b], [out], name=_fresh(model, f"{after.name}_bias")))
            _drop_bias(model, after)
        _insert_after(model, after, moved)
        return True


def _drop_bias(model: ModelWrapper, layer: onnx.NodeProto) -> None:
    """The layer without its bias (it is added after the scale now): a Conv drops the input, a Gemm gets
    zeros (qonnx's GemmToMatMul reads a Gemm's third input unconditionally)."""
    if layer.op_type == "Conv":
        del layer.input[2]
        return
    zeros = np.zeros(model.get_tensor_shape(layer.output[0])[-1])
    layer.input[2] = _constant(model, f"{layer.name}_no_bias", zeros)


def _forget(model: ModelWrapper, tensor: str) -> None:
    """Drop a tensor's recorded shape (its name is gone, or now holds a value of another shape)."""
    for info in [v for v in model.graph.value_info if v.name == tensor]:
        model.graph.value_info.remove(info)


def _chain(model: ModelWrapper, tensor: str) -> tuple[str, list[onnx.NodeProto]]:
    """The elementwise float ops by constants that end in `tensor`, walked back to the tensor they start
    from (each op's output used only by the next)."""
    graph = QonnxGraph(model)
    chain: list[onnx.NodeProto] = []
    while True:
        node = model.find_producer(tensor)
        if node is None or node.op_type not in AFFINE_OPS:
            return tensor, chain
        variables = [i for i in node.input[: 1 if node.op_type == "BatchNormalization" else 2]
                     if i and not graph.is_constant(i)]  # fmt: skip
        if len(variables) != 1 or (node.op_type == "Div" and node.input[0] != variables[0]):
            return tensor, chain
        if chain and _single_consumer(model, tensor) is None:
            return tensor, chain
        chain.insert(0, node)
        tensor = variables[0]


def needs_thresholds(model: ModelWrapper, chain: list[onnx.NodeProto]) -> bool:
    """Whether the chain holds a float op that fixed point cannot do cheaply: Div, Sub, a Mul by a scale
    that is not a power of two, or a BatchNorm other than qfx's exact x * gamma + beta."""
    for node in chain:
        if node.op_type in ("Div", "Sub"):
            return True
        if node.op_type == "Mul" and scale_constant(model, node) is not None:
            return True
        if node.op_type == "BatchNormalization":
            mean, var = (model.get_initializer(node.input[i]) for i in (3, 4))
            epsilon = float(ops.attrs(node).get("epsilon", 1e-5))
            if mean is None or var is None or np.any(mean != 0) or np.any(np.asarray(var) + epsilon != 1):
                return True
    return False


def tensor_bounds(graph: QonnxGraph, tensor: str, memo: dict[str, Bounds | None]) -> Bounds | None:
    """The range and grid of a tensor computed by the exact part of the graph (None where unknown)."""
    if tensor not in memo:
        node = graph.producer(tensor)
        op = ops.REGISTRY.get(node.op_type) if node is not None else None
        if op is None:
            memo[tensor] = None
        else:
            inputs = [None if not i or graph.is_constant(i) else tensor_bounds(graph, i, memo) for i in node.input]
            memo[tensor] = op.bounds(node, inputs, graph)
    return memo[tensor]


def _unquantized(graph: QonnxGraph, tensor: str) -> bool:
    """Whether the tensor is computed from the graph input by float ops alone (no quantizer on the way)."""
    node = graph.producer(tensor)
    while node is not None:
        variables = [i for i in node.input if i and not graph.is_constant(i)]
        if node.op_type in ("Quant", "BipolarQuant", "MultiThreshold") or len(variables) != 1:
            return False
        node = graph.producer(variables[0])
    return True


def _per_channel(value: np.ndarray, shape: list[int], where: str) -> np.ndarray:
    """A constant broadcast over a channel-first tensor as one value per channel [C, 1], or a ValueError."""
    full = np.broadcast_to(np.asarray(value, dtype=np.float64), [1, *shape[1:]]).reshape(1, shape[1], -1)
    if not np.all(full == full[:, :, :1]):
        raise ValueError(f"{where}: a constant that varies within a channel has no per-channel thresholds")
    return full[0, :, :1]


class _Affine:
    """The chain of float ops as functions of x[C, K] (one row per channel), and each channel's direction."""

    def __init__(self, model: ModelWrapper, chain: list[onnx.NodeProto], shape: list[int]) -> None:
        graph = QonnxGraph(model)
        self.steps: list[tuple[str, np.ndarray, bool]] = []
        self.slope = np.ones((shape[1], 1))
        for node in chain:
            if node.op_type == "Relu":
                self.steps.append(("Relu", np.zeros((1, 1)), False))
                continue
            if node.op_type == "BatchNormalization":
                scale, bias = scale_bias(node, graph)
                self._step("Mul", scale.reshape(-1, 1), False)
                self._step("Add", bias.reshape(-1, 1), False)
                continue
            at = 0 if not graph.is_constant(node.input[0]) else 1
            c = _per_channel(graph.constant(node.input[1 - at]), shape, f"node {node.name}")
            self._step(node.op_type, c, node.op_type == "Sub" and at == 1)

    def _step(self, op: str, c: np.ndarray, reversed_sub: bool) -> None:
        self.steps.append((op, c, reversed_sub))
        if op in ("Mul", "Div"):
            self.slope = self.slope * np.sign(c)
        elif reversed_sub:
            self.slope = -self.slope

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for op, c, reversed_sub in self.steps:
            if op == "Relu":
                x = np.maximum(x, 0.0)
            elif op == "Mul":
                x = x * c
            elif op == "Div":
                x = x / c
            elif op == "Add":
                x = x + c
            else:
                x = c - x if reversed_sub else x - c
        return x


class AbsorbIntoThresholds(Transformation):
    """Float ops between an exact tensor and an activation quantizer (see `needs_thresholds`) and the
    quantizer, and every bipolar activation, become one MultiThreshold on that tensor: for each channel
    and level, the smallest value on the tensor's grid whose float result the quantizer puts at that level
    or above (a channel whose ops decrease is thresholded on the negated tensor)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = QonnxGraph(model)
        memo: dict[str, Bounds | None] = {}
        for quant in list(model.graph.node):
            if quant.op_type not in ("Quant", "BipolarQuant") or graph.is_constant(quant.input[0]):
                continue
            start, chain = _chain(model, quant.input[0])
            bipolar = quant.op_type == "BipolarQuant"  # hls4ml's bipolar activation outputs 0/1, not -1/+1
            if graph.producer(start) is None or not (bipolar or (chain and needs_thresholds(model, chain))):
                continue
            bounds = tensor_bounds(graph, start, memo)
            if bounds is None and _unquantized(graph, start):
                continue  # preprocessing of the raw input: the host's part (see host.head_nodes)
            if bounds is None and not chain:
                bounds = Bounds(0.0, 0.0, 0)  # the sign of any value: one threshold at 0
            if bounds is None:
                producer = graph.producer(start)
                raise ValueError(
                    f"node {quant.name}: the float ops before it ({', '.join(n.name for n in chain)}) need exact "
                    f"thresholds, but the range of tensor {start} ({producer.op_type} node {producer.name}) is unknown"
                )
            self._replace(model, quant, start, chain, bounds)
            return model, True
        return model, False

    def _replace(self, model, quant, start, chain, bounds) -> None:
        shape = [int(d) for d in model.get_tensor_shape(start)]
        if quant.op_type == "BipolarQuant":
            low, high, out_scale, out_bias = 0, 1, 2.0, -1.0
        else:
            fmt = read_format(quant, _Constants(model))
            low, high, out_scale, out_bias = fmt.min_int, fmt.max_int, fmt.lsb, fmt.min_int * fmt.lsb
        if high - low > MAX_STEPS:
            raise ValueError(
                f"node {quant.name}: {high - low + 1} levels after float ops need {high - low} thresholds per "
                f"channel (at most {MAX_STEPS + 1} levels are built); quantize to fewer bits or make the ops "
                "before it fixed point"
            )
        affine = _Affine(model, chain, shape)

        def level(x: np.ndarray) -> np.ndarray:
            y = affine(x)
            if quant.op_type == "BipolarQuant":
                return (y >= 0).astype(np.int64)
            return np.rint(levels(model, quant, y / out_scale)).astype(np.int64)

        direction = np.where(affine.slope < 0, -1.0, 1.0)  # [C, 1]
        t = _search(level, direction, bounds, high - low, low)
        name = quant.name
        source = start
        nodes = []
        if np.any(direction < 0):
            sign = direction.reshape(-1, *[1] * (len(shape) - 2))
            source = _fresh(model, f"{name}_signed_in")
            nodes.append(helper.make_node("Mul", [start, _constant(model, f"{name}_signs", sign)], [source],
                                          name=_fresh(model, f"{name}_signs")))  # fmt: skip
        thresholds = _fresh(model, f"{name}_thresholds")
        model.set_initializer(thresholds, t)  # float64: a threshold can need more bits than a float32 has
        nodes.append(helper.make_node(
            "MultiThreshold", [source, thresholds], [quant.output[0]], name=name, domain=QONNX_DOMAIN,
            out_scale=float(out_scale), out_bias=float(out_bias), data_layout=LAYOUT[len(shape)],
            out_dtype=("BIPOLAR" if quant.op_type == "BipolarQuant" else
                       f"{'INT' if low < 0 else 'UINT'}{(high - low).bit_length()}"),
        ))  # fmt: skip
        at = list(model.graph.node).index(quant)
        for n, node in enumerate(nodes):
            model.graph.node.insert(at + n, node)
        for node in [*chain, quant]:
            model.graph.node.remove(node)
            _forget(model, node.output[0])
        model.set_tensor_shape(quant.output[0], shape)
        _check_thresholds(level, direction, bounds, t, low, f"node {quant.name}")


def _grid(bounds: Bounds, direction: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The grid of d * x for each channel's direction d: its lowest point [C, 1], step and last index."""
    step = math.ldexp(1.0, -bounds.frac)
    lo, hi = math.floor(bounds.lo / step) * step, math.ceil(bounds.hi / step) * step
    start = np.where(direction > 0, lo, -hi)
    return start, step, round((hi - lo) / step)


def _search(level, direction: np.ndarray, bounds: Bounds, steps: int, low: int) -> np.ndarray:
    """Thresholds [C, steps] on d * x: the k-th is the first grid point whose level is low + k or more
    (one past the grid where none is)."""
    start, step, last = _grid(bounds, direction)
    need = np.arange(1, steps + 1)[None, :] + low
    a = np.zeros((len(direction), steps), dtype=np.int64)
    b = np.full_like(a, last + 1)
    while np.any(a < b):
        mid = (a + b) // 2
        reached = level(direction * (start + np.minimum(mid, last) * step)) >= need
        reached &= mid <= last
        b = np.where((a < b) & reached, mid, b)
        a = np.where((a < b) & ~reached, mid + 1, a)
    return start + a * step


def _check_thresholds(level, direction, bounds, t, low, where) -> None:
    """Compare the thresholds with the float ops on sampled grid points (both ends included): a chain that
    is not monotone per channel has no thresholds."""
    start, step, last = _grid(bounds, direction)
    rng = np.random.default_rng(0)
    n = np.concatenate([[0, last], rng.integers(0, last + 1, size=510)])[None, :]
    y = start + n * step  # d * x [C, K]
    counts = (y[:, :, None] >= t[:, None, :]).sum(-1)
    if not np.array_equal(level(direction * y), low + counts):
        raise ValueError(f"{where}: the float ops before it are not monotone per channel; no thresholds reproduce them")


class Streamline(Transformation):
    """Scales moved and merged as far as they go, then one quantizer's float ops absorbed; repeated (by
    qonnx's transform loop) until no quantizer is left to absorb."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        model = model.transform(MoveScales(), make_deepcopy=False)
        return AbsorbIntoThresholds().apply(model)
