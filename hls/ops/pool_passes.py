"""hls4ml 1.3.0 optimizer passes that make its pooling layers compute what ONNX's MaxPool/AveragePool do,
or refuse, naming the layer, where its io_stream templates would abort the C simulation.

Registered once into the `vivado:optimize` flow (which Vitis runs too), after precision inference, so
the pool's input type is final.
"""

from __future__ import annotations

import hls4ml
from hls4ml.model.layers import Pooling1D, Pooling2D
from hls4ml.model.optimizer import OptimizerPass
from hls4ml.model.types import FixedPrecisionType


def _pads(node) -> dict[str, int]:
    keys = (
        ("pad_left", "pad_right") if isinstance(node, Pooling1D) else ("pad_top", "pad_bottom", "pad_left", "pad_right")
    )
    return {k: int(node.get_attr(k) or 0) for k in keys}


def _stream(model) -> bool:
    return model.config.get_config_value("IOType") == "io_stream"


class PadPoolingExplicitly(OptimizerPass):
    """Padding moved into a ZeroPadding1D/2D layer in front of the pool where zero padding gives ONNX's
    result: MaxPool on an unsigned input (every window holds a real value >= 0, so a padded 0 never wins;
    hls4ml's own pad value, the bit pattern 100..0 of nnet_pooling.h's pad_val, is +2^(I-1) for
    ap_ufixed and does win), and AveragePool with count_include_pad=1. io_stream pooling has no padding
    (nnet_pooling_stream.h asserts pads == 0): the other padded pools are refused there."""

    def match(self, node) -> bool:
        return isinstance(node, Pooling1D | Pooling2D) and any(_pads(node).values())

    def transform(self, model, node) -> bool:
        precision = node.get_input_variable().type.precision
        is_max = node.get_attr("pool_op") == "Max"
        if (is_max and not precision.signed) or (not is_max and node.get_attr("count_pad")):
            pass  # zero padding is exact
        elif _stream(model):
            raise ValueError(
                f"layer {node.name}: padded {node.get_attr('pool_op')} pooling on "
                f"{'a signed input' if is_max else 'count_include_pad=0'} has no exact io_stream form in "
                "hls4ml 1.3.0; use --io parallel"
            )
        else:
            return False  # io_parallel's own padding is exact: signed max, or averages over real elements
        pads = _pads(node)
        attrs = {
            **pads,
            "n_chan": node.get_attr("n_filt"),
            "data_format": node.get_attr("data_format", "channels_last"),
        }
        if isinstance(node, Pooling1D):
            width = node.get_attr("n_in") + pads["pad_left"] + pads["pad_right"]
            attrs |= {"in_width": node.get_attr("n_in"), "out_width": width}
            node.set_attr("n_in", width)
            kind = "ZeroPadding1D"
        else:
            height = node.get_attr("in_height") + pads["pad_top"] + pads["pad_bottom"]
            width = node.get_attr("in_width") + pads["pad_left"] + pads["pad_right"]
            attrs |= {
                "in_height": node.get_attr("in_height"),
                "in_width": node.get_attr("in_width"),
                "out_height": height,
                "out_width": width,
            }
            node.set_attr("in_height", height)
            node.set_attr("in_width", width)
            kind = "ZeroPadding2D"
        for key in pads:
            node.set_attr(key, 0)
        pad = model.make_node(kind, f"{node.name}_zero_pad", attrs, node.inputs.copy())
        pad.get_output_variable().type.precision = precision
        model.insert_node(pad, before=node)
        return True


class ExactAveragePoolTypes(OptimizerPass):
    """Average pooling passes its exact quotient on, so the next Quant rounds it once.

    hls4ml's precision inference gives the result the input's type, rounding the average to the input's
    LSB before the next Quant rounds it again; qfx admits power-of-two divisors only (see averagepool.py),
    whose quotients are exact with log2(d) more fractional bits.
    """

    def match(self, node) -> bool:
        return (
            isinstance(node, Pooling1D | Pooling2D)
            and node.get_attr("pool_op") == "Average"
            and not node.get_attr("qfx_exact_average", False)
        )

    def transform(self, model, node) -> bool:
        p = node.get_input_variable().type.precision
        if not isinstance(p, FixedPrecisionType):
            raise ValueError(f"layer {node.name}: input type {p} is not fixed point")
        area = node.get_attr("pool_width") * (node.get_attr("pool_height") or 1)
        grow = (area - 1).bit_length()  # ceil(log2 area): the sum of `area` values, and at most that shift
        integer = p.integer + grow
        exact = FixedPrecisionType(width=p.width + 2 * grow, integer=integer, signed=p.signed)
        node.types["accum_t"].precision = exact
        node.get_output_variable().type.precision = FixedPrecisionType(
            width=p.width + 2 * grow, integer=integer, signed=p.signed
        )
        node.set_attr("qfx_exact_average", True)
        return False


class CheckStreamPooling(OptimizerPass):
    """Vitis io_stream 2-D pooling implements stride == kernel only (nnet_pooling_stream.h asserts it,
    which would abort the whole process in C simulation)."""

    def match(self, node) -> bool:
        return (
            isinstance(node, Pooling2D)
            and _stream(node.model)
            and (node.get_attr("pool_height"), node.get_attr("pool_width"))
            != (node.get_attr("stride_height"), node.get_attr("stride_width"))
        )

    def transform(self, model, node) -> bool:
        raise ValueError(
            f"layer {node.name}: io_stream 2-D pooling needs stride == kernel in hls4ml 1.3.0 (kernel "
            f"{node.get_attr('pool_height')}x{node.get_attr('pool_width')}, stride "
            f"{node.get_attr('stride_height')}x{node.get_attr('stride_width')}); use --io parallel"
        )


_registered: list[str] = []


def register() -> None:
    """The passes, once per process (hls4ml refuses a pass registered twice)."""
    if _registered:
        return
    backend = hls4ml.backends.get_backend("Vivado")
    for name, cls in (
        ("qfx_pad_pooling_explicitly", PadPoolingExplicitly),
        ("qfx_exact_average_pool_types", ExactAveragePoolTypes),
        ("qfx_check_stream_pooling", CheckStreamPooling),
    ):
        backend.register_pass(name, cls, flow="vivado:optimize")
        _registered.append(name)
