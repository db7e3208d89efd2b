"""QONNX's MultiThreshold as an hls4ml 1.3.0 layer, through hls4ml's extension API: the ONNX handler, the
layer, two optimizer passes, Vivado and Vitis templates and the C++ (templates/nnet_multithreshold.h), so
thresholded activations convert bit-exactly. `register()` installs it all, once per process.

Types: the per-layer config gives them the usual hls4ml way, `Precision: {'threshold': ..., 'result': ...}`,
and they are checked to hold the thresholds and every output level exactly. 'auto' (what
`config_from_onnx_model` writes) derives them exactly instead: the result from out_scale, out_bias and the
number of thresholds; the thresholds from the input's type (each rounded up to the input's grid and clipped
to one LSB past its range, which changes no comparison with an input of that type).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.converters.onnx_to_hls import get_onnx_attribute, register_onnx_layer_handler
from hls4ml.model.attributes import Attribute, TypeAttribute, WeightAttribute
from hls4ml.model.flow import get_flow, update_flow
from hls4ml.model.layers import Constant, Layer, register_layer
from hls4ml.model.optimizer import OptimizerPass, register_pass
from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType, UnspecifiedPrecisionType
from onnx import numpy_helper

from qfx.hls.ops import Bounds

OP_TYPE = "MultiThreshold"
HEADER = Path(__file__).resolve().parent.parent / "templates" / "nnet_multithreshold.h"


def _channel_last(node: Any, rank: int) -> None:
    """Refuse, naming the node, a layout whose channel axis is not the last one. Without data_layout, qonnx
    reads rank 2 as NC, rank 3 as NWC and rank 4 as NCHW (and otherwise takes axis 1 as the channel)."""
    layout = get_onnx_attribute(node, "data_layout", "") or {2: "NC", 3: "NWC", 4: "NCHW"}.get(rank, "")
    axis = layout.index("C") if "C" in layout else 1
    if len(layout) not in (0, rank) or axis != rank - 1:
        raise ValueError(
            f"node {node.name}: MultiThreshold with data_layout {layout or '(none)'} on a rank-{rank} input: "
            "hls4ml's tensors are channels-last and the channel must be the last axis"
        )


def parse_multithreshold_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml's description of a MultiThreshold node: its thresholds (a constant initializer, shape (C, T) or
    (1, T)) and output scaling (a positive power of two, and a bias that is a multiple of it)."""
    shape = input_shapes[0]
    if len(shape) < 2:
        raise ValueError(f"node {node.name}: MultiThreshold needs an input [N, ..., C], got shape {shape}")
    _channel_last(node, len(shape))
    init = next((t for t in graph.initializer if t.name == node.input[1]), None)
    if init is None:
        raise ValueError(f"node {node.name}: MultiThreshold thresholds {node.input[1]} are not a constant")
    thresholds = numpy_helper.to_array(init).astype(np.float64)
    n_chan = int(shape[-1])
    if thresholds.ndim != 2 or thresholds.shape[0] not in (1, n_chan) or thresholds.shape[1] < 1:
        raise ValueError(
            f"node {node.name}: MultiThreshold thresholds of shape {list(thresholds.shape)}: need "
            f"({n_chan}, T) or (1, T) for {n_chan} channels, T >= 1"
        )
    if not np.isfinite(thresholds).all():
        raise ValueError(f"node {node.name}: MultiThreshold thresholds must be finite")
    out_scale = float(get_onnx_attribute(node, "out_scale", 1.0))
    out_bias = float(get_onnx_attribute(node, "out_bias", 0.0))
    if not (out_scale > 0 and math.frexp(out_scale)[0] == 0.5 and math.isfinite(out_bias)):
        raise ValueError(
            f"node {node.name}: MultiThreshold out_scale {out_scale} / out_bias {out_bias}: qfx needs a positive "
            "power-of-two out_scale and a finite out_bias"
        )
    return {
        "class_name": OP_TYPE,
        "name": node.name,
        "inputs": input_names,
        "outputs": list(node.output),
        "threshold_data": thresholds,
        "out_scale": out_scale,
        "out_bias": out_bias,
        "n_in": int(np.prod(shape[1:])),
        "n_chan": n_chan,
    }


def _levels(node: Any) -> tuple[int, int, int, bool, int, int]:
    """The outputs as integer levels k * 2^e, k = lowest + count * step, with 2^e the coarsest unit of both
    out_scale and out_bias (bipolar outputs are -1 + 2 * count): (lowest k, highest k, e, signed, bits of k,
    step)."""
    out_scale, out_bias = node.get_attr("out_scale"), node.get_attr("out_bias")
    e = min(math.frexp(out_scale)[1] - 1, -Bounds.of(np.array([out_bias])).frac)
    step = int(out_scale / 2.0**e)
    lo = int(out_bias / 2.0**e)
    hi = lo + node.get_attr("n_thresholds") * step
    signed = lo < 0
    bits = max(_bits(lo, signed), _bits(hi, signed), 1)
    return lo, hi, e, signed, bits, step


def _bits(v: int, signed: bool) -> int:
    """Bits of v as an ap_int (signed) or ap_uint."""
    if not signed:
        return v.bit_length()
    return (v if v >= 0 else -v - 1).bit_length() + 1


def _fixed(p: Any) -> bool:
    return isinstance(p, FixedPrecisionType | IntegerPrecisionType)


def _holds(p: Any, values: np.ndarray) -> bool:
    """Whether every value is exactly representable in the fixed-point type p."""
    scaled = np.asarray(values, dtype=np.float64) * 2.0**p.fractional
    lo = -(2.0 ** (p.width - 1)) if p.signed else 0.0
    hi = 2.0 ** (p.width - 1 if p.signed else p.width) - 1
    return bool(np.all((scaled == np.round(scaled)) & (scaled >= lo) & (scaled <= hi)))


class MultiThreshold(Layer):
    """y = out_bias + out_scale * (count of the channel's thresholds that x is >= to), elementwise over a
    channels-last tensor; the thresholds are the layer's weight `threshold` of shape (rows, T)."""

    _expected_attributes = [
        Attribute("n_in"),
        Attribute("n_chan"),
        Attribute("n_thresholds"),
        Attribute("out_scale", value_type=float),
        Attribute("out_bias", value_type=float),
        WeightAttribute("threshold"),
        TypeAttribute("threshold"),
    ]

    def initialize(self) -> None:
        data = self.get_attr("threshold_data")
        self.set_attr("n_thresholds", data.shape[1])
        lo, hi, e, signed, bits, step = _levels(self)
        result, _ = self.model.config.get_precision(self, "result")
        if isinstance(result, UnspecifiedPrecisionType):
            # the exact type of the levels, with at least one integer bit (a sign bit when signed)
            integer = max(bits + e, int(signed))
            result = FixedPrecisionType(width=integer + max(-e, 0), integer=integer, signed=signed)
        # the lowest level, the next and the highest: range and step, so every level in between
        elif not (_fixed(result) and _holds(result, np.array([lo, lo + step, hi]) * 2.0**e)):
            raise ValueError(
                f"layer {self.name}: result type {result} does not hold every MultiThreshold output "
                f"({lo * 2.0**e} to {hi * 2.0**e} in steps of {step * 2.0**e})"
            )
        self.add_output_variable(self.get_input_variable().shape, precision=result)
        self.add_weights_variable(name="threshold", var_name="thr{index}")
        precision = self.get_weights("threshold").type.precision
        if not isinstance(precision, UnspecifiedPrecisionType) and not (_fixed(precision) and _holds(precision, data)):
            raise ValueError(f"layer {self.name}: threshold type {precision} does not hold the thresholds exactly")


class MultiThresholdConstantThresholds(OptimizerPass):
    """The thresholds' Constant layer leaves the graph: the handler already put its values in the layer."""

    def match(self, node) -> bool:
        return isinstance(node, MultiThreshold) and len(node.inputs) > 1

    def transform(self, model, node) -> bool:
        const = node.get_input_node(node.inputs[1])
        node.inputs = node.inputs[:1]
        if isinstance(const, Constant) and not const.get_output_nodes():  # not shared with another layer
            model.remove_node(const)
        return True


class MultiThresholdInputGridThresholds(OptimizerPass):
    """An 'auto' threshold type, once the input's type is known: each threshold rounded up to the input's
    grid (x >= t <=> x >= ceil_grid(t) for x on that grid) and clipped to [min, max + LSB] of the input
    type (always / never true), in the input's type with one more integer bit."""

    def match(self, node) -> bool:
        return (
            isinstance(node, MultiThreshold)
            and isinstance(node.get_weights("threshold").type.precision, UnspecifiedPrecisionType)
            and not isinstance(node.get_input_variable().type.precision, UnspecifiedPrecisionType)
        )

    def transform(self, model, node) -> bool:
        p = node.get_input_variable().type.precision
        if not _fixed(p):
            raise ValueError(f"layer {node.name}: MultiThreshold input type {p} is not fixed point")
        lsb = 2.0**-p.fractional
        lo = -(2.0 ** (p.integer - 1)) if p.signed else 0.0
        hi = 2.0 ** (p.integer - (1 if p.signed else 0)) - lsb
        data = np.clip(np.ceil(node.get_attr("threshold_data") / lsb) * lsb, lo, hi + lsb)
        _, type_name = model.config.get_precision(node, "threshold")
        node.add_weights_variable(
            name="threshold",
            var_name="thr{index}",
            type_name=type_name,
            precision=FixedPrecisionType(width=p.width + 1, integer=p.integer + 1, signed=p.signed),
            data=data,
        )
        return False


CONFIG_TEMPLATE = """struct config{index} : nnet::multithreshold_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_chan = {n_chan};
    static const unsigned n_rows = {n_rows};
    static const unsigned n_thresholds = {n_thresholds};
    static const int out_bias_steps = {out_bias_steps};
    static const int out_scale_log2 = {out_scale_log2};
    static const int count_step = {count_step};
    static const unsigned io_type = nnet::{iotype};
    static const unsigned reuse_factor = {reuse};
    typedef {threshold_t.name} threshold_t;
    typedef ap_uint<{count_bits}> count_t;
    typedef {level_t} level_t;
}};\n"""

FUNCTION_TEMPLATE = "nnet::multithreshold<{input_t}, {output_t}, {config}>({input}, {output}, {threshold});"


class MultiThresholdConfigTemplate(LayerConfigTemplate):
    def __init__(self) -> None:
        super().__init__(MultiThreshold)
        self.template = CONFIG_TEMPLATE

    def format(self, node) -> str:
        params = self._default_config_params(node)
        lo, _, e, signed, bits, step = _levels(node)
        # level_t holds the level k (bits integer bits) and k * 2^e (|e| more bits on the side e points to)
        params["level_t"] = f"ap_{'' if signed else 'u'}fixed<{bits + abs(e)}, {bits + max(e, 0)}>"
        params["n_in"] = node.get_input_variable().size_cpp()
        params["n_rows"] = node.get_attr("threshold_data").shape[0]
        params["out_bias_steps"] = lo
        params["out_scale_log2"] = e
        params["count_step"] = step
        params["count_bits"] = max(1, node.get_attr("n_thresholds").bit_length())
        return self.template.format(**params)


class MultiThresholdFunctionTemplate(FunctionCallTemplate):
    def __init__(self) -> None:
        super().__init__(MultiThreshold, include_header=["nnet_utils/nnet_multithreshold.h"])
        self.template = FUNCTION_TEMPLATE

    def format(self, node) -> str:
        params = self._default_function_params(node)
        params["threshold"] = node.get_weights("threshold").name
        return self.template.format(**params)


_registered: list[str] = []


def register() -> None:
    """The handler, layer, passes, templates and C++ source, once per process (hls4ml refuses repeats)."""
    if _registered:
        return
    register_onnx_layer_handler(OP_TYPE, parse_multithreshold_layer)
    register_layer(OP_TYPE, MultiThreshold)
    register_pass("qfx_multithreshold_constant_thresholds", MultiThresholdConstantThresholds)
    update_flow("parse_qonnx", add_optimizers=["qfx_multithreshold_constant_thresholds"])
    # before hls4ml's precision inference, which would give an 'auto' threshold type the default precision
    register_pass("qfx_multithreshold_input_grid_thresholds", MultiThresholdInputGridThresholds)
    convert = get_flow("convert").optimizers
    convert.insert(convert.index("infer_precision_types"), "qfx_multithreshold_input_grid_thresholds")
    for name in ("Vivado", "Vitis"):
        backend = hls4ml.backends.get_backend(name)
        backend.register_template(MultiThresholdConfigTemplate)
        backend.register_template(MultiThresholdFunctionTemplate)
        backend.register_source(HEADER)
    _registered.append(OP_TYPE)
