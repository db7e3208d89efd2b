"""QONNX `Quant` with a power-of-two scale and zero point 0: an ap_fixed cast."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch

from qfx.export import QONNX_ROUNDING
from qfx.fixed import FixedFormat, quantize_int
from qfx.hls.ops import Bounds, Op, attrs, quant_passes, register
from qfx.hls.rtl.arrays import quantize

# QONNX rounding_mode -> ap_fixed quantization mode: the exporter's table read backwards (CEIL and UP have
# no ap_fixed equivalent).
ROUNDING_FROM_QONNX = {qonnx: ap for ap, qonnx in QONNX_ROUNDING.items()} | {"HALF_EVEN": "RND_CONV"}
# What hls4ml 1.3.0's Quant handling emits (quant_opt._calculate_precision_quantizer); other modes are set
# by qfx's pass (activations) or the constant is folded to its exact values first.
HLS4ML_ROUNDING = ("RND_CONV", "TRN")
HLS4ML_OVERFLOW = ("SAT", "SAT_SYM")


def _constant(graph: Any, node: onnx.NodeProto, index: int, role: str) -> np.ndarray:
    value = graph.initializer(node.input[index]) if len(node.input) > index else None
    if value is None:
        raise ValueError(f"node {node.name}: the {role} of a Quant node must be a constant")
    return value


def read_format(node: onnx.NodeProto, graph: Any, scale: np.ndarray | None = None) -> FixedFormat:
    """The ap_fixed type a QONNX Quant node is (with `scale`: the type of the channels with that scale),
    or a ValueError naming the node when it is none."""
    scale = _constant(graph, node, 1, "scale") if scale is None else scale
    zero = _constant(graph, node, 2, "zero point")
    bits = _constant(graph, node, 3, "bit width")
    if np.any(zero != 0):
        raise ValueError(f"node {node.name}: zero point must be 0 for fixed point")
    if scale.size == 0 or np.any(scale <= 0) or np.any(np.frexp(scale)[0] != 0.5):
        raise ValueError(
            f"node {node.name}: scale {scale.ravel()[:4].tolist()} is not a power of two; qfx targets exact fixed point"
        )
    if np.unique(scale).size != 1:
        raise ValueError(
            f"node {node.name}: per-channel scales are supported on constants (weights, biases) only; an activation "
            "takes one power-of-two scale"
        )
    if bits.size != 1 or bits.item() != round(bits.item()):
        raise ValueError(f"node {node.name}: bit width {bits.ravel().tolist()} must be one integer")
    width = int(bits.item())
    frac = -int(np.frexp(scale.ravel()[0])[1] - 1)
    a = attrs(node)
    signed = bool(a.get("signed", 1))
    narrow = bool(a.get("narrow", 0))
    if narrow and not signed and "qfx_overflow" not in a:
        # QONNX's unsigned narrow range is [0, 2^W - 2]: no ap_ufixed saturates there.
        raise ValueError(
            f"node {node.name}: an unsigned narrow Quant clips to [0, 2^{width} - 2] LSBs, which no ap_ufixed "
            "type does; use narrow=0 (or signed=1 with narrow=1 for a symmetric range)"
        )
    if width == 1 and signed and "qfx_overflow" not in a:
        # QONNX (qonnx's executor, FINN) reads a signed 1-bit Quant as the bipolar +-scale; ap_fixed<1> holds
        # {-scale, 0}.
        raise ValueError(
            f"node {node.name}: a signed 1-bit Quant is bipolar (+-scale) in QONNX, which no ap_fixed type is; "
            "use BipolarQuant or 2 bits"
        )
    qonnx_rounding = str(a.get("rounding_mode", "ROUND")).upper()
    rounding = str(a.get("qfx_rounding", ROUNDING_FROM_QONNX.get(qonnx_rounding, "")))
    if not rounding:
        raise ValueError(f"node {node.name}: rounding_mode {qonnx_rounding} has no ap_fixed equivalent")
    overflow = str(a.get("qfx_overflow", "SAT_SYM" if narrow and signed else "SAT"))
    try:
        return FixedFormat(width, width - frac, signed, rounding, overflow)
    except ValueError as e:
        raise ValueError(f"node {node.name}: {e}") from None


def channel_formats(node: onnx.NodeProto, graph: Any, shape: tuple[int, ...]) -> list[tuple[np.ndarray, FixedFormat]]:
    """Each distinct scale of the node broadcast over a constant of `shape`: where it applies, and its type
    (a per-channel power-of-two scale gives each channel its own binary point)."""
    scale = np.broadcast_to(_constant(graph, node, 1, "scale"), shape)
    return [(scale == s, read_format(node, graph, np.array(s))) for s in np.unique(scale)]


def quantize_constant(node: onnx.NodeProto, graph: Any, value: torch.Tensor) -> torch.Tensor:
    """A constant through the Quant node, each channel in its own format where the scale is per channel."""
    out = torch.empty_like(value, dtype=torch.float64)
    for mask, fmt in channel_formats(node, graph, tuple(value.shape)):
        where = torch.from_numpy(np.ascontiguousarray(mask))
        out[where] = fmt.quantize(value.to(torch.float64)[where])
    return out


def per_channel(node: onnx.NodeProto, graph: Any) -> bool:
    return np.unique(_constant(graph, node, 1, "scale")).size > 1


def make_quant(model: Any, x: str, out: str, name: str, fmt: FixedFormat) -> onnx.NodeProto:
    """A Quant node that is the cast to `fmt`, its constants set on the qonnx `model`: QONNX's attributes
    where QONNX can say the mode, qfx's exact ones always (as the exporter writes them)."""
    constants = {"scale": 2.0**-fmt.frac_bits, "zeropt": 0.0, "bits": float(fmt.width)}
    for key, value in constants.items():
        model.set_initializer(f"{name}_{key}", np.array(value, dtype=np.float32))
        model.set_tensor_shape(f"{name}_{key}", [])  # hls4ml reads every input's shape from value_info
    return onnx.helper.make_node(
        "Quant",
        [x, *(f"{name}_{key}" for key in constants)],
        [out],
        name=name,
        domain="qonnx.custom_op.general",
        signed=int(fmt.signed),
        narrow=int(fmt.overflow == "SAT_SYM" and fmt.signed),
        rounding_mode=QONNX_ROUNDING.get(fmt.rounding, "ROUND"),
        qfx_rounding=fmt.rounding,
        qfx_overflow=fmt.overflow,
    )


def events(x: torch.Tensor, fmt: FixedFormat) -> dict[str, int]:
    """How many values of x the cast to `fmt` sends out of range (saturated or wrapped) or meets at a tie
    (exactly half an LSB, where the rounding mode decides)."""
    v = torch.ldexp(x.to(torch.float64), torch.tensor(fmt.frac_bits, dtype=torch.float64))
    ties = int(((v - torch.floor(v)) == 0.5).sum()) if fmt.rounding not in ("TRN", "TRN_ZERO") else 0
    rounded = quantize_int(v.clamp(-(2.0**60), 2.0**60), 62, True, fmt.rounding, "SAT")
    out = int(((rounded < fmt.min_int) | (rounded > fmt.max_int)).sum())
    kind = "wrapped" if fmt.overflow.startswith("WRAP") else "saturated"
    return {"values": int(v.numel()), "ties": ties, kind: out}


@register("Quant")
class Quant(Op):
    defaults = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"}  # QONNX's (hls4ml reads absent as None)
    hls4ml_quantize_constants = False

    def check(self, node, graph):
        if graph.is_constant(node.input[0]):
            channel_formats(node, graph, graph.constant(node.input[0]).shape)
        else:
            graph.format(node)
        if attrs(node).get("qfx_k_hot") and not graph.is_constant(node.input[0]):
            raise ValueError(
                f"node {node.name}: K-hot activations (qfx_k_hot) are not converted; only K-hot weights are"
            )

    def emulate(self, node, args, emu):
        if emu.graph.is_constant(node.input[0]):
            return quantize_constant(node, emu.graph, args[0])
        fmt = emu.graph.format(node)
        if emu.stats is not None and not emu.graph.is_constant(node.input[0]):
            emu.record(node.name, events(args[0], fmt))
        return fmt.quantize(args[0])

    def trace(self, node, args, tracer):
        return quantize(args[0], tracer.graph.format(node), node.name)

    def bounds(self, node, inputs, graph):
        if graph.is_constant(node.input[0]):
            return None
        fmt = graph.format(node)
        return Bounds(fmt.min_value, fmt.max_value, fmt.frac_bits)

    def hls4ml_setup(self):
        quant_passes.register()

    def hls4ml_check(self, node, graph):
        """Constants reach hls4ml as exact values where hls4ml's Quant handling cannot say their format
        (`FoldConstantQuants`); an activation's modes are set by `quant_passes`, except WRAP_SM, which
        hls4ml's precision types lack."""
        if graph.is_constant(node.input[0]):
            return
        fmt = graph.format(node)
        if fmt.overflow == "WRAP_SM":
            raise ValueError(
                f"node {node.name}: overflow WRAP_SM ({fmt}) cannot be converted: hls4ml's precision types have "
                "no sign-magnitude wrap; use WRAP, SAT, SAT_ZERO or SAT_SYM"
            )

    def hls4ml_config(self, node, graph, layer):
        if graph.is_constant(node.input[0]):
            return
        fmt = graph.format(node)
        if not native(fmt):
            layer[quant_passes.CONFIG_KEY] = {
                "width": fmt.width, "integer": fmt.int_bits, "signed": fmt.signed,
                "rounding": fmt.rounding, "overflow": fmt.overflow, "text": str(fmt),
            }  # fmt: skip


def native(fmt: FixedFormat) -> bool:
    """Whether hls4ml's own Quant handling builds exactly this format."""
    return fmt.rounding in HLS4ML_ROUNDING and fmt.overflow in HLS4ML_OVERFLOW


def hls4ml_attributes(node: onnx.NodeProto, fmt: FixedFormat) -> None:
    """The standard attributes rewritten canonically for `fmt` (ROUND/FLOOR, narrow for SAT_SYM), so hls4ml
    derives exactly the format qfx read, whatever spelling the file used (lower case, HALF_EVEN, qfx_*)."""
    canonical = {
        "signed": int(fmt.signed),
        "narrow": int(fmt.overflow == "SAT_SYM" and fmt.signed),
        "rounding_mode": "ROUND" if fmt.rounding == "RND_CONV" else "FLOOR",
    }
    for a in [a for a in node.attribute if a.name in canonical]:
        node.attribute.remove(a)
    node.attribute.extend(onnx.helper.make_attribute(k, v) for k, v in canonical.items())
