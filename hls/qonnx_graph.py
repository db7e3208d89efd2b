"""Reading a (Q)ONNX model for conversion: load, check, describe every Quant node's ap_fixed format,
quantize float constants exactly, and apply the qonnx transforms hls4ml's ONNX frontend needs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from qfx.fixed import MAX_WIDE_WIDTH, FixedFormat

SUPPORTED_OPS = (
    "Quant",
    "BipolarQuant",
    "MatMul",
    "Gemm",
    "Conv",
    "Add",
    "Mul",
    "Relu",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "Flatten",
    "Reshape",
    "Transpose",
    "Identity",
)
# QONNX rounding_mode -> ap_fixed quantization mode (CEIL and UP have no ap_fixed equivalent).
ROUNDING_FROM_QONNX = {
    "ROUND": "RND_CONV",
    "HALF_EVEN": "RND_CONV",
    "FLOOR": "TRN",
    "DOWN": "TRN_ZERO",
    "HALF_UP": "RND_INF",
    "HALF_DOWN": "RND_ZERO",
}
# What hls4ml 1.3.0's Quant handling emits (quant_opt._calculate_precision_quantizer).
HLS4ML_ROUNDING = ("RND_CONV", "TRN")
HLS4ML_OVERFLOW = ("SAT", "SAT_SYM")


def parse(data: bytes, where: str) -> onnx.ModelProto:
    """Decode and check ONNX bytes; any defect is a ValueError naming `where` (a file, an upload)."""
    try:
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
    except Exception as e:  # protobuf's DecodeError and onnx's ValidationError share no base
        reason = str(e).splitlines()[0][:200] if str(e) else repr(e)
        raise ValueError(f"{where}: not a valid ONNX model ({reason})") from None
    if not proto.graph.node:
        raise ValueError(f"{where}: the graph has no nodes")
    return proto


def load(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file; any defect is a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return parse(path.read_bytes(), str(path))


def check_ops(proto: onnx.ModelProto) -> None:
    for node in proto.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            raise ValueError(
                f"node {node.name or '(unnamed)'}: op type {node.op_type} is not supported "
                f"(supported: {', '.join(SUPPORTED_OPS)})"
            )


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _constant(model: ModelWrapper, name: str, node: onnx.NodeProto, role: str) -> np.ndarray:
    value = model.get_initializer(name)
    if value is None:
        raise ValueError(f"node {node.name}: the {role} of a Quant node must be a constant")
    return np.asarray(value, dtype=np.float64)


def quant_format(model: ModelWrapper, node: onnx.NodeProto) -> FixedFormat:
    """The ap_fixed type a QONNX Quant node is, or ValueError naming the node when it is none."""
    scale = _constant(model, node.input[1], node, "scale")
    zero = _constant(model, node.input[2], node, "zero point")
    bits = _constant(model, node.input[3], node, "bit width")
    if np.any(zero != 0):
        raise ValueError(f"node {node.name}: zero point must be 0 for fixed point")
    if scale.size == 0 or np.any(scale <= 0) or np.any(np.frexp(scale)[0] != 0.5):
        raise ValueError(
            f"node {node.name}: scale {scale.ravel()[:4].tolist()} is not a power of two; qfx targets exact fixed point"
        )
    if np.unique(scale).size != 1:
        raise ValueError(f"node {node.name}: per-channel scales are not supported; use one power-of-two scale")
    if bits.size != 1 or bits.item() != round(bits.item()):
        raise ValueError(f"node {node.name}: bit width {bits.ravel().tolist()} must be one integer")
    width = int(bits.item())
    frac = -int(np.frexp(scale.ravel()[0])[1] - 1)
    signed = bool(_attr(node, "signed", 1))
    qonnx_rounding = _text(_attr(node, "rounding_mode", "ROUND")).upper()
    rounding = _text(_attr(node, "qfx_rounding", ROUNDING_FROM_QONNX.get(qonnx_rounding, "")))
    if not rounding:
        raise ValueError(f"node {node.name}: rounding_mode {qonnx_rounding} has no ap_fixed equivalent")
    narrow = bool(_attr(node, "narrow", 0))
    overflow = _text(_attr(node, "qfx_overflow", "SAT_SYM" if narrow and signed else "SAT"))
    try:
        return FixedFormat(width, width - frac, signed, rounding, overflow)
    except ValueError as e:
        raise ValueError(f"node {node.name}: {e}") from None


def exact_format(values: np.ndarray, where: str) -> FixedFormat:
    """Narrowest format holding every value exactly (for constants the model left in float)."""
    v = [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]
    nonzero = [x for x in v if x != 0]
    if not nonzero:
        return FixedFormat(1, 1, False)
    # x = M * 2^(e-53) with M an integer: it needs 53 - e - (trailing zeros of M) fractional bits.
    frac = max(
        53 - e - ((m := int(abs(mm) * 2**53)) & -m).bit_length() + 1 for mm, e in (math.frexp(x) for x in nonzero)
    )
    codes = [int(x * 2.0**frac) for x in v]
    lo, hi = min(codes), max(codes)
    signed = lo < 0
    width = max(max(hi, 0).bit_length() + 1, (-lo - 1).bit_length() + 1) if signed else max(hi.bit_length(), 1)
    if width > MAX_WIDE_WIDTH:
        raise ValueError(f"{where}: holding these constants exactly needs {width} bits; quantize them in the model")
    return FixedFormat(width, width - frac, signed, wide=True)


def quantize_float_constants(model: ModelWrapper) -> ModelWrapper:
    """Insert an exact Quant node in front of every float constant that feeds a compute op unquantized
    (e.g. a float bias), so hls4ml types it exactly instead of at its default precision."""
    graph = model.graph
    for node in list(graph.node):
        # BatchNormalization constants are typed through the layer config (batchnorm_formats).
        if node.op_type in ("Quant", "BipolarQuant", "Reshape", "Transpose", "Flatten", "BatchNormalization"):
            continue
        for i, name in enumerate(node.input):
            value = model.get_initializer(name)
            if value is None:
                continue
            fmt = exact_format(value, f"node {node.name} input {name}")
            q_out = f"{name}_qfx_exact"
            consts = [
                (f"{name}_qfx_scale", 2.0**-fmt.frac_bits),
                (f"{name}_qfx_zeropt", 0.0),
                (f"{name}_qfx_bits", float(fmt.width)),
            ]
            for cname, cval in consts:
                graph.initializer.append(numpy_helper.from_array(np.array(cval, dtype=np.float32), cname))
                model.set_tensor_shape(cname, [])  # hls4ml reads every input's shape from value_info
            graph.node.insert(
                list(graph.node).index(node),
                helper.make_node(
                    "Quant",
                    [name] + [c for c, _ in consts],
                    [q_out],
                    name=f"{name}_qfx_exact_quant",
                    domain="qonnx.custom_op.general",
                    signed=int(fmt.signed),
                    narrow=0,
                    rounding_mode="ROUND",
                ),
            )
            node.input[i] = q_out
    return cleanup_model(model)


def check_inputs_quantized(model: ModelWrapper) -> None:
    """Every graph input must go straight into a Quant node: an unquantized activation has no format."""
    for inp in model.graph.input:
        for consumer in model.find_consumers(inp.name) or []:
            if consumer.op_type not in ("Quant", "BipolarQuant"):
                raise ValueError(
                    f"tensor {inp.name}: the input feeds {consumer.op_type} node {consumer.name} "
                    "unquantized; put a Quant node on it"
                )


def squeeze_broadcast_constants(model: ModelWrapper) -> ModelWrapper:
    """Drop leading unit dimensions of constants feeding Mul/Add (directly or through a Quant).

    Right-aligned broadcasting makes [1,1,1,C] and [C] the same; hls4ml's folding of Mul/Add by a
    constant broadcasts against the shape without the batch dimension and fails on the longer one.
    """
    for node in model.graph.node:
        if node.op_type not in ("Mul", "Add"):
            continue
        for name in node.input:
            producer = model.find_producer(name)
            source = producer.input[0] if producer is not None and producer.op_type == "Quant" else name
            value = model.get_initializer(source)
            if value is None or value.ndim <= 1:
                continue
            squeezed = value.reshape(value.shape[next((i for i, d in enumerate(value.shape) if d != 1), -1) :])
            model.set_initializer(source, squeezed)
            if producer is not None and producer.op_type == "Quant":
                model.set_tensor_shape(name, list(squeezed.shape))
    return model


def constant_value(model: ModelWrapper, tensor: str) -> np.ndarray | None:
    """The value of a constant tensor, through an exact Quant node if one produces it."""
    value = model.get_initializer(tensor)
    if value is not None:
        return np.asarray(value, dtype=np.float64)
    producer = model.find_producer(tensor)
    if producer is None or producer.op_type != "Quant":
        return None
    inner = constant_value(model, producer.input[0])
    if inner is None:
        return None
    return quant_format(model, producer).quantize(torch.from_numpy(inner)).numpy()


def batchnorm_formats(model: ModelWrapper) -> dict[str, tuple[FixedFormat, FixedFormat]]:
    """Exact (scale, bias) formats of each BatchNormalization node, as hls4ml computes them
    (scale = gamma / sqrt(var + eps), bias = beta - mean * scale); ValueError when they are not exact."""
    out = {}
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        gamma, beta, mean, var = (constant_value(model, t) for t in node.input[1:5])
        if any(v is None for v in (gamma, beta, mean, var)):
            raise ValueError(f"node {node.name}: BatchNormalization parameters must be constants")
        scale = gamma / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
        bias = beta - mean * scale
        try:
            out[node.name] = (exact_format(scale, node.name), exact_format(bias, node.name))
        except ValueError:
            raise ValueError(
                f"node {node.name}: BatchNormalization scale/bias are not exact in fixed point; "
                "quantize them (qfx.nn.BatchNorm) or fold them into the previous layer"
            ) from None
    return out


def check_hls4ml_modes(node: onnx.NodeProto, fmt: FixedFormat) -> None:
    """hls4ml 1.3.0 turns a Quant into ap_fixed with AP_RND_CONV or AP_TRN and AP_SAT or AP_SAT_SYM only."""
    if fmt.rounding not in HLS4ML_ROUNDING or fmt.overflow not in HLS4ML_OVERFLOW:
        raise ValueError(
            f"node {node.name}: rounding {fmt.rounding} with overflow {fmt.overflow} cannot be "
            "converted: hls4ml's Quant handling supports "
            f"rounding {'/'.join(HLS4ML_ROUNDING)} and overflow {'/'.join(HLS4ML_OVERFLOW)}"
        )


def input_format(model: ModelWrapper) -> FixedFormat:
    """The format of the model's first quantizer: what the hardware's input port carries."""
    return quant_format(model, model.find_consumers(model.graph.input[0].name)[0])


def prepare(proto: onnx.ModelProto) -> tuple[ModelWrapper, FixedFormat]:
    """qonnx cleanup, exact constants, channels-last and GemmToMatMul: what hls4ml's frontend needs.

    Returns the prepared model and its input format (read before channels-last moves the Quant).
    """
    check_ops(proto)
    model = cleanup_model(ModelWrapper(proto))
    check_inputs_quantized(model)
    for node in model.graph.node:
        if node.op_type == "Quant":
            check_hls4ml_modes(node, quant_format(model, node))
    in_fmt = input_format(model)
    model = model.transform(GemmToMatMul())
    model = quantize_float_constants(cleanup_model(model))
    model = model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=False))
    return cleanup_model(squeeze_broadcast_constants(cleanup_model(model))), in_fmt
