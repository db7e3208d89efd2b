"""Float ONNX models (no quantizer; hls4ml's own example models are such) made fixed point: a Quant node
on the input, on every weight and bias and on every computed tensor, with a declared precision (hls4ml's
default `ap_fixed<16,6>`) or with formats calibrated on sample inputs. The formats are written into the
graph, so what is converted is proven exactly; how far it is from the float model is measured."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from qfx.fixed import FixedFormat
from qfx.hls import ops
from qfx.hls.graph import QONNX_DOMAIN, QUANTIZERS
from qfx.hls.ops.quant import make_quant

# Ops that only move values (hls4ml makes no arithmetic layer of them): no new format after them. ReLU and
# max pooling keep their input's values too, but hls4ml gives their result a type only from a quantizer.
PASS_THROUGH = ("Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze")
# A computed tensor read only by one of these with a constant operand is not quantized: the affine goes on
# (a bias after a MatMul, BatchNorm written as Mul and Add), as hls4ml fuses it into one layer.
AFFINE = ("Add", "Mul")


def is_float_model(proto: onnx.ModelProto) -> bool:
    return not any(n.op_type in QUANTIZERS for n in proto.graph.node)


def _consumers(model: ModelWrapper, tensor: str) -> list[onnx.NodeProto]:
    return model.find_consumers(tensor) or []


def plan(model: ModelWrapper) -> list[str]:
    """The tensors to quantize, in graph order: the input, the constants and outputs of converted ops."""
    out = [model.graph.input[0].name]
    for node in model.graph.node:
        op = ops.REGISTRY.get(node.op_type)
        if op is None or not op.exact:
            continue  # not converted: refused by name, or a float tail the host runs (Softmax)
        out += [i for i in node.input if i and model.get_initializer(i) is not None and i not in out]
        if node.op_type in PASS_THROUGH:
            continue
        for tensor in node.output:
            readers = _consumers(model, tensor)
            affine = (
                len(readers) == 1
                and readers[0].op_type in AFFINE
                and any(model.get_initializer(i) is not None for i in readers[0].input)
            )
            if not affine:
                out.append(tensor)
    return out


def _run_all(model: ModelWrapper, tensors: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of `tensors` that is computed, for each sample of x, by onnxruntime (float32)."""
    proto = onnx.ModelProto.FromString(model.model.SerializeToString())
    computed = [t for t in tensors if model.get_initializer(t) is None]
    known = {o.name for o in proto.graph.output}
    for t in computed:
        if t not in known:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    inp = session.get_inputs()[0].name
    values: dict[str, list] = {n: [] for n in names}
    for i in range(len(x)):
        for name, v in zip(names, session.run(None, {inp: x[i : i + 1].astype(np.float32)}), strict=True):
            values[name].append(v)
    return {n: np.concatenate(v) for n, v in values.items()}


def calibrated(lo: float, hi: float, bits: int) -> FixedFormat:
    """The `bits`-wide format whose integer part just holds [lo, hi] (signed where lo < 0), rounding to
    nearest and saturating."""
    signed = lo < 0
    top = max(abs(lo), abs(hi), 2.0**-bits)
    int_bits = math.floor(math.log2(top)) + 1 + int(signed)
    return FixedFormat(bits, int_bits, signed, "RND_CONV", "SAT")


def quantize(
    proto: onnx.ModelProto,
    precision: FixedFormat | None = None,
    calibration: np.ndarray | None = None,
    bits: int = 8,
) -> tuple[onnx.ModelProto, dict]:
    """The model with a Quant node on each planned tensor: `precision` everywhere, or formats of `bits`
    calibrated on `calibration` (inputs [N, ...]) and on the constants' values. Returns the model and
    what was chosen (tensor -> format)."""
    if (precision is None) == (calibration is None):
        raise ValueError("a float model needs either a precision (--precision) or calibration inputs (--calibrate)")
    model = ModelWrapper(onnx.ModelProto.FromString(proto.SerializeToString())).transform(InferShapes())
    tensors = plan(model)
    formats: dict[str, FixedFormat] = {}
    if precision is not None:
        formats = dict.fromkeys(tensors, precision)
    else:
        seen = _run_all(model, tensors, calibration)
        for t in tensors:
            value = model.get_initializer(t)
            v = np.asarray(value if value is not None else seen[t], dtype=np.float64)
            formats[t] = calibrated(float(v.min()), float(v.max()), bits)
    for n, tensor in enumerate(tensors):
        quantized = f"{tensor}_qfx_q"
        for reader in _consumers(model, tensor):
            for i, name in enumerate(reader.input):
                if name == tensor:
                    reader.input[i] = quantized
        node = make_quant(model, tensor, quantized, f"qfx_quant_{n}", formats[tensor])
        producer = model.find_producer(tensor)
        at = list(model.graph.node).index(producer) + 1 if producer is not None else 0
        model.graph.node.insert(at, node)
        if tensor == model.graph.output[0].name:
            model.graph.output[0].name = quantized
    if not any(o.domain == QONNX_DOMAIN for o in model.model.opset_import):
        model.model.opset_import.append(onnx.helper.make_opsetid(QONNX_DOMAIN, 1))
    return model.model, {t: str(f) for t, f in formats.items()}


def output_change(reference: np.ndarray, fixed: np.ndarray) -> dict:
    """How far the fixed-point outputs are from the float model's on the same inputs."""
    reference, fixed = reference.reshape(len(reference), -1), fixed.reshape(len(fixed), -1)
    diff = np.abs(reference.astype(np.float64) - fixed)
    change = {"inputs": len(reference), "max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
    if reference.shape[1] > 1:
        change["argmax_agreement"] = float((reference.argmax(1) == fixed.argmax(1)).mean())
    return change
