"""Tracing a QONNX graph into a da4ml fixed-point program: the RTL's arithmetic, node for node.

The walk mirrors `hls.emulate.Emulator`: nodes whose inputs are all constants (weight quantizers) are
evaluated by the emulator itself; every other node is traced on da4ml's symbolic arrays, whose ops are
exact, so the traced program computes exactly what the emulation computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from da4ml.trace import FixedVariable, FixedVariableArray, FixedVariableArrayInput, HWConfig, comb_trace
from da4ml.types import CombLogic
from onnx import helper
from qfx.hls.emulate import Emulator
from qfx.hls.qonnx_graph import exact_format

from qfx.fixed import FixedFormat

# da4ml quantizes with TRN/RND and WRAP/SAT/SAT_SYM; RND_CONV is built from those below.
RTL_ROUNDING = ("TRN", "RND", "RND_CONV")
RTL_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")
STYLES = ("da", "mult")
HWCONF = HWConfig(1, -1, -1)


def kif(fmt: FixedFormat) -> tuple[int, int, int]:
    """ap_fixed<W,I> as da4ml's (sign bit, integer bits without sign, fractional bits)."""
    k = int(fmt.signed)
    return k, fmt.int_bits - k, fmt.width - fmt.int_bits


def _round(v: FixedVariable, rounding: str, f: int) -> FixedVariable:
    """v shifted so that truncating it to f fractional bits rounds as `rounding` does."""
    f0 = v.kif[2]
    if f0 <= f or rounding == "TRN":
        return v
    if rounding == "RND":
        return v + 2.0 ** (-f - 1)
    # RND_CONV, round half to even, from truncation: add half an LSB less one input LSB, plus one input
    # LSB when the kept LSB is odd; truncation then sends ties to the even neighbour and the rest to nearest.
    odd = v.quantize(0, 1 - f, f, "WRAP", "TRN")  # the kept LSB, as 0 or 2^-f
    return v + (2.0 ** (-f - 1) - 2.0**-f0) + odd * 2.0 ** (f - f0)


def _quantize_scalar(v: FixedVariable, fmt: FixedFormat) -> FixedVariable:
    k, i, f = kif(fmt)
    v = _round(v, fmt.rounding, f)
    if fmt.overflow == "WRAP" and not fmt.signed and v.low < 0:
        # da4ml narrows an unsigned wrap of a signed value to one bit above the value's range, dropping the
        # sign extension (ap_ufixed<6,7> of -8 is 120, not 8); adding 2^i to negatives is the same modulo
        # 2^i and keeps the range honest.
        v = v + v.is_negative() * 2.0**i
    return v.quantize(k, i, f, fmt.overflow, "TRN")


def quantize(x: FixedVariableArray, fmt: FixedFormat, where: str) -> FixedVariableArray:
    """The ap_fixed cast `fmt` on every element, exactly (rounding first, then overflow, as ap_fixed)."""
    if fmt.rounding not in RTL_ROUNDING or fmt.overflow not in RTL_OVERFLOW:
        raise ValueError(
            f"node {where}: {fmt} has no RTL: rounding must be one of {', '.join(RTL_ROUNDING)} "
            f"and overflow one of {', '.join(RTL_OVERFLOW)}"
        )
    out = np.array([_quantize_scalar(v, fmt) for v in np.ravel(x._vars)], dtype=object)
    return FixedVariableArray(out.reshape(x.shape), hwconf=HWCONF)


def windows(
    shape: tuple[int, ...], kernel: list[int], strides: list[int], pads: list[int], dilations: list[int]
) -> np.ndarray:
    """Flat input indices of every sliding window: [positions..., C, *kernel], -1 where padding is read.

    `shape` is one sample's [C, *spatial]; pads are ONNX's [begin..., end...].
    """
    nd = len(kernel)
    index = np.arange(math.prod(shape)).reshape(shape)
    index = np.pad(index, [(0, 0)] + [(pads[d], pads[d + nd]) for d in range(nd)], constant_values=-1)
    out_sizes = [(index.shape[1 + d] - dilations[d] * (kernel[d] - 1) - 1) // strides[d] + 1 for d in range(nd)]
    rows = []
    for pos in np.ndindex(*out_sizes):
        sl = tuple(
            slice(pos[d] * strides[d], pos[d] * strides[d] + dilations[d] * (kernel[d] - 1) + 1, dilations[d])
            for d in range(nd)
        )
        rows.append(index[(slice(None), *sl)])
    return np.stack(rows).reshape(*out_sizes, shape[0], *kernel)


@dataclass
class Traced:
    """A traced graph: the combinational program, its input format and the weights fed in as ports."""

    comb: CombLogic
    input_format: FixedFormat
    input_shape: list[int]
    output_shape: list[int]
    weights: np.ndarray  # constant values of the weight ports (multiplier style), in port order


class Tracer:
    """Walks the graph once on symbolic arrays of one sample ([1, ...]), as the emulator walks tensors."""

    def __init__(self, proto: onnx.ModelProto, style: str = "da") -> None:
        if style not in STYLES:
            raise ValueError(f"style {style!r} is not one of {', '.join(STYLES)}")
        self.emulator = Emulator(proto)
        self.graph = proto.graph
        self.style = style
        self.weight_vars: list[FixedVariable] = []
        self.weight_values: list[float] = []

    def run(self) -> Traced:
        graph_in = self.graph.input[0]
        shape = [d.dim_value or 1 for d in graph_in.type.tensor_type.shape.dim]
        shape[0] = 1
        inp = FixedVariableArrayInput(tuple(shape), hwconf=HWCONF)
        values: dict[str, object] = {k: v.numpy() for k, v in self.emulator.consts.items()}
        values[graph_in.name] = inp
        in_fmt = None
        for node in self.graph.node:
            args = [values[i] if i else None for i in node.input]
            if all(not isinstance(a, FixedVariableArray) for a in args):
                tensors = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in args]
                values[node.output[0]] = self.emulator.op(node, tensors).numpy()
                continue
            if args[0] is inp and node.op_type == "Quant":
                # The port carries the first quantizer's bits (applied by the caller, as for the C
                # simulation), so the cast only declares the port's format.
                in_fmt = self.emulator.formats[node.name]
                k, i, f = kif(in_fmt)
                values[node.output[0]] = inp.quantize(k, i, f, "WRAP", "TRN")
                continue
            if any(a is inp for a in args):
                raise ValueError(f"node {node.name}: the graph input must go through a Quant node first")
            values[node.output[0]] = self.op(node, args)
        if in_fmt is None:
            raise ValueError("the graph input is not quantized: no RTL port format")
        out = values[self.graph.output[0].name]
        if not isinstance(out, FixedVariableArray):
            raise ValueError(f"graph output {self.graph.output[0].name} does not depend on the input")
        ports = np.concatenate([np.ravel(inp._vars), np.array(self.weight_vars, dtype=object)])
        comb = comb_trace(list(ports), list(np.ravel(out._vars)), keep_dead_inputs=True)
        return Traced(comb, in_fmt, shape, list(out.shape), np.array(self.weight_values, dtype=np.float64))

    def op(self, node: onnx.NodeProto, args: list) -> FixedVariableArray:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        x = args[0]
        match node.op_type:
            case "Quant":
                return quantize(x, self.emulator.formats[node.name], node.name)
            case "MatMul":
                return self.matmul(x, args[1], node.name)
            case "Gemm":
                x = x.T if a.get("transA", 0) else x
                w = args[1].T if a.get("transB", 0) else args[1]
                if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                    raise ValueError(f"node {node.name}: Gemm with alpha/beta other than 1 has no RTL")
                y = self.matmul(x, w, node.name)
                return y + args[2] if len(args) > 2 and args[2] is not None else y
            case "Add":
                return x + args[1] if isinstance(x, FixedVariableArray) else args[1] + x
            case "Mul":
                return (
                    self.scale(x, args[1], node.name)
                    if isinstance(x, FixedVariableArray)
                    else self.scale(args[1], x, node.name)
                )
            case "Relu":
                return np.maximum(x, 0.0)
            case "BatchNormalization":
                gamma, beta, mean, var = args[1:5]
                scale = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
                view = [1, -1] + [1] * (len(x.shape) - 2)
                return self.scale(x, scale.reshape(view), node.name) + (beta - mean * scale).reshape(view)
            case "Conv":
                return self.conv(x, args[1], args[2] if len(args) > 2 else None, a, node.name)
            case "MaxPool" | "AveragePool":
                return self.pool(x, a, node)
            case "Flatten":
                axis = int(a.get("axis", 1))
                return x.reshape(math.prod(x.shape[:axis]), -1)
            case "Reshape":
                dims = [int(d) for d in np.asarray(args[1]).tolist()]
                dims[0] = 1 if dims[0] in (0, 1) else dims[0]
                return x.reshape(*[x.shape[i] if d == 0 else d for i, d in enumerate(dims)])
            case "Transpose":
                return x.transpose(list(a["perm"]))
            case "Identity":
                return x
        raise ValueError(f"node {node.name}: op type {node.op_type} has no RTL")

    def constant(self, w: np.ndarray, where: str) -> np.ndarray | FixedVariableArray:
        """A constant multiplicand: a float array for distributed arithmetic (da4ml solves the constant
        products into adder graphs), or, in multiplier style, ports tied to the constants by the top module,
        so each product is a plain `x * w` multiplier; zeros and powers of two stay constants (no product
        or a shift, as synthesis would make of them)."""
        if self.style == "da":
            return w
        fmt = exact_format(w, where)
        k, i, f = kif(fmt)
        out = np.empty(w.shape, dtype=object)
        for idx, value in np.ndenumerate(w):
            if value == 0 or math.log2(abs(value)).is_integer():
                out[idx] = FixedVariable.from_const(float(value), HWCONF)
                continue
            port = FixedVariableArrayInput((1,), hwconf=HWCONF)
            self.weight_vars.append(port._vars[0])
            self.weight_values.append(float(value))
            out[idx] = port.quantize(k, i, f, "WRAP", "TRN")._vars[0]
        return FixedVariableArray(out, hwconf=HWCONF)

    def matmul(self, x: FixedVariableArray, w: np.ndarray, where: str) -> FixedVariableArray:
        if isinstance(w, FixedVariableArray):
            raise ValueError(f"node {where}: a product of two variables has no RTL here")
        return x @ self.constant(np.asarray(w), where)

    def scale(self, x: FixedVariableArray, c: np.ndarray, where: str) -> FixedVariableArray:
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), x.shape)
        return x * self.constant(c, where) if self.style == "mult" else x * c

    def conv(self, x: FixedVariableArray, w: np.ndarray, b: np.ndarray | None, a: dict, where: str):
        """Each output position is a constant matrix-vector product over the window's valid inputs
        (padding reads zeros, so its weight rows drop out)."""
        nd = w.ndim - 2
        group = int(a.get("group", 1))
        idx = windows(
            tuple(x.shape[1:]),
            list(w.shape[2:]),
            list(a.get("strides", [1] * nd)),
            list(a.get("pads", [0] * 2 * nd)),
            list(a.get("dilations", [1] * nd)),
        )
        positions = idx.shape[:nd]
        c_in, c_out = w.shape[1], w.shape[0]
        per_group = c_out // group
        flat = np.ravel(x._vars)
        wc = self.constant(np.asarray(w), where)
        out = np.empty((c_out, *positions), dtype=object)
        for pos in np.ndindex(*positions):
            for g in range(group):
                window = idx[pos][g * c_in : (g + 1) * c_in].reshape(-1)
                valid = np.flatnonzero(window >= 0)
                wg = wc[g * per_group : (g + 1) * per_group].reshape(per_group, -1).T[valid]
                xg = FixedVariableArray(flat[window[valid]], hwconf=HWCONF)
                y = xg @ wg
                if b is not None:
                    y = y + b[g * per_group : (g + 1) * per_group]
                out[(slice(g * per_group, (g + 1) * per_group), *pos)] = y._vars
        return FixedVariableArray(out[None], hwconf=HWCONF)

    def pool(self, x: FixedVariableArray, a: dict, node: onnx.NodeProto) -> FixedVariableArray:
        k = list(a["kernel_shape"])
        nd = len(k)
        pads = list(a.get("pads", [0] * 2 * nd))
        idx = windows(tuple(x.shape[1:]), k, list(a.get("strides", k)), pads, [1] * nd)
        positions = idx.shape[:nd]
        flat = np.ravel(x._vars)
        out = np.empty((x.shape[1], *positions), dtype=object)
        for pos in np.ndindex(*positions):
            for c in range(x.shape[1]):
                window = idx[pos][c].reshape(-1)
                terms = list(flat[window[window >= 0]])
                if node.op_type == "MaxPool":
                    acc = terms[0]
                    for t in terms[1:]:
                        acc = acc.max_of(t)
                else:
                    # count_include_pad=0: divide by the valid count, which must be a power of two to be a shift
                    if not math.log2(len(terms)).is_integer():
                        raise ValueError(
                            f"node {node.name}: averaging {len(terms)} values is not a shift; "
                            "only power-of-two pool areas have exact RTL"
                        )
                    acc = sum(terms[1:], terms[0]) * (1.0 / len(terms))
                out[(c, *pos)] = acc
        return FixedVariableArray(out[None], hwconf=HWCONF)


def trace(proto: onnx.ModelProto, style: str = "da") -> Traced:
    """The graph as one combinational da4ml program (data inputs first, then any weight ports)."""
    return Tracer(proto, style).run()
