"""Export a qfx model to standard ONNX in which every fixed-point tensor is a QONNX ``Quant`` node.

A ``Quant`` node (domain ``qonnx.custom_op.general``) with scale 2^-F, zero point 0 and bit width W
is exactly ap_fixed<W, W-F> with saturation, which QONNX tools (Brevitas, FINN, hls4ml) understand.
A per-channel activation quantizer becomes one ``Quant`` whose scale is a tensor that broadcasts
along the channel axis ([1, C] or [1, C, 1, 1]) with the one width W, as Brevitas writes it.
What QONNX cannot say travels as extra node attributes that qfx reads back: ``qfx_rounding`` and
``qfx_overflow`` (the exact ap_fixed modes) and ``qfx_k_hot``.  Where the standard attributes alone
compute something else (a mode QONNX lacks, K-hot activations, a signed 1-bit tensor) the export
warns with ``NonStandardQuantWarning``, or refuses under ``strict=True``.  Weights are stored
already quantized, so their ``Quant`` node is an identity and per-channel binary points survive in
a union format.  Only a calibrated (or trained) model exports.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import fx, nn

import qfx.nn as qnn
from qfx.fixed import FixedFormat
from qfx.quant import FixedQuantizer, KHotQuantizer

QONNX_DOMAIN = "qonnx.custom_op.general"
# QONNX rounding_mode strings that are exactly an ap_fixed quantization mode.  qonnx 1.0's executor
# (custom_op/general/intquant.py, resolve_rounding_mode) implements all five: ROUND is np.round (ties
# to even), FLOOR, DOWN is np.fix, HALF_UP / HALF_DOWN round ties away from / toward zero.  hls4ml
# 1.3 accepts only ROUND and FLOOR and refuses the other three loudly, so none computes anything else.
QONNX_ROUNDING = {
    "RND_CONV": "ROUND",
    "TRN": "FLOOR",
    "TRN_ZERO": "DOWN",
    "RND_INF": "HALF_UP",
    "RND_ZERO": "HALF_DOWN",
}
# ap_fixed modes without a QONNX equivalent, and what they do; such a node is written with
# rounding_mode ROUND (narrow saturation for SAT_SYM only), which is what other tools then compute.
NON_QONNX_ROUNDING = {"RND": "ties toward +inf", "RND_MIN_INF": "ties toward -inf"}
NON_QONNX_OVERFLOW = {
    "WRAP": "two's-complement wrap-around",
    "WRAP_SM": "sign-magnitude wrap-around",
    "SAT_ZERO": "overflowed values set to 0",
}
OTHER_TOOLS = "qonnx's executor, FINN and hls4ml"
OPSET = 13


class NonStandardQuantWarning(UserWarning):
    """An exported Quant node whose standard QONNX attributes compute something else than qfx does;
    only qfx (reading qfx_rounding / qfx_overflow / qfx_k_hot) computes the model exactly."""


class _Tracer(fx.Tracer):
    """Keeps every qfx layer (and plain torch modules) a leaf, so the graph is layer by layer."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, qnn.FixedLayer) or super().is_leaf_module(m, qualname)


class _Shapes(fx.Interpreter):
    """Runs the traced graph once and records each node's output shape."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.shapes: dict[str, list[int]] = {}

    def run_node(self, n: fx.Node) -> object:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.shapes[n.name] = list(out.shape)
        return out


def _non_standard(fmt: FixedFormat, k_hot: int | None, identity: bool) -> list[str]:
    """What the standard attributes of fmt's Quant node make other tools compute differently."""
    issues = []
    if fmt.signed and fmt.width == 1:
        issues.append(
            "a signed 1-bit Quant is bipolar (+-scale) in qonnx's executor and FINN, not ap_fixed<1,..>'s "
            "{-scale, 0} (hls4ml computes it as qfx does)"
        )
    if identity:
        # Stored values already lie on the grid and in range: every rounding and overflow mode, and
        # K-hot digit selection, leave them unchanged.
        return issues
    if fmt.rounding in NON_QONNX_ROUNDING:
        issues.append(
            f"rounding {fmt.rounding} ({NON_QONNX_ROUNDING[fmt.rounding]}) has no QONNX rounding_mode; "
            f"{OTHER_TOOLS} round ties to even (ROUND) instead"
        )
    if fmt.overflow in NON_QONNX_OVERFLOW:
        issues.append(
            f"overflow {fmt.overflow} ({NON_QONNX_OVERFLOW[fmt.overflow]}) is not QONNX's; {OTHER_TOOLS} "
            "saturate (SAT) out-of-range values instead"
        )
    if k_hot is not None:
        issues.append(
            f"K-hot codes (qfx_k_hot={k_hot}, at most {k_hot} nonzero signed digits) are not QONNX; "
            f"{OTHER_TOOLS} round to the plain {fmt.width}-bit grid instead"
        )
    return issues


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.names: set[str] = set()
        self.issues: list[str] = []  # one message per non-standard Quant node

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.unique(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], base: str, domain: str = "", **attrs: object) -> str:
        out = self.unique(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.unique(f"{base}_{op}"), domain=domain, **attrs))
        return out

    def quant(
        self,
        x: str,
        fmt: FixedFormat,
        base: str,
        where: str,
        k_hot: int | None = None,
        scale: np.ndarray | None = None,
        identity: bool = False,
        text: str | None = None,
    ) -> str:
        """A QONNX Quant node for `fmt` (saturating, as QONNX defines it) with qfx's exact modes attached.

        `scale` (default 2^-F of fmt) may be a per-channel tensor; `where` names the tensor in messages;
        `identity` says the input already holds values of fmt (parameters); `text` describes the format.
        """
        scale = np.asarray(2.0**-fmt.frac_bits if scale is None else scale, dtype=np.float64)
        if not np.array_equal(scale.astype(np.float32).astype(np.float64), scale):
            raise ValueError(f"{where}: scale 2^-F of {fmt} does not fit float32 (ONNX stores float32)")
        scale_name = self.const(f"{base}_scale", scale)
        zero = self.const(f"{base}_zeropt", np.float32(0.0))
        bits = self.const(f"{base}_bitwidth", np.float32(fmt.width))
        attrs: dict[str, object] = {
            "signed": int(fmt.signed),
            "narrow": int(fmt.overflow == "SAT_SYM" and fmt.signed),
            "rounding_mode": QONNX_ROUNDING.get(fmt.rounding, "ROUND"),
            "qfx_rounding": fmt.rounding,
            "qfx_overflow": fmt.overflow,
        }
        if k_hot is not None:
            attrs["qfx_k_hot"] = k_hot
        out = self.node("Quant", [x, scale_name, zero, bits], base, domain=QONNX_DOMAIN, **attrs)
        issues = _non_standard(fmt, k_hot, identity)
        if issues:
            self.issues.append(
                f"Quant node {self.nodes[-1].name} (tensor {where}, {text or fmt}): {'; '.join(issues)}. "
                "qfx reads the exact behaviour back from the qfx_* attributes, other tools ignore them"
            )
        return out

    def activation(self, x: str, q: FixedQuantizer, base: str, where: str, shape: list[int]) -> str:
        """Quantize a computed tensor with q; a per-channel q gets a scale that broadcasts along its axis."""
        k = q.k if isinstance(q, KHotQuantizer) else None
        formats = q.formats()
        if len(set(formats)) == 1:
            return self.quant(x, formats[0], base, where, k)
        axis = q.axis % len(shape) if shape else 0
        if axis == 0 or shape[axis] != len(formats):
            raise ValueError(
                f"{where}: per-channel quantizer of {len(formats)} channels along axis {q.axis} does not fit "
                f"the tensor of shape {shape} (batch first); its channels must lie along a non-batch axis"
            )
        # One width W for every channel; the binary point is per channel, so scale 2^-F_c is a tensor
        # [1, C] / [1, C, 1, 1] as QONNX and Brevitas write per-channel scales.
        view = [1] * len(shape)
        view[axis] = len(formats)
        scale = np.array([2.0**-f.frac_bits for f in formats]).reshape(view)
        # formats[0] gives W, signedness and modes, which all channels share.
        lo, hi = min(f.int_bits for f in formats), max(f.int_bits for f in formats)
        text = str(formats[0]).replace(f",{formats[0].int_bits}", f",I={lo}..{hi} per channel", 1)
        return self.quant(x, formats[0], base, where, k, scale=scale, text=text)

    def param(self, q: FixedQuantizer, values: torch.Tensor | np.ndarray, base: str, where: str) -> str:
        """A parameter already quantized by `q`, stored as float32 behind an identity Quant of q's format.

        For per-channel q that is the union of the channels' formats: every stored value lies on its
        channel's grid, hence on the union's finer grid and in its range, so the Quant stays an exact
        identity.
        """
        data = values.detach().numpy() if isinstance(values, torch.Tensor) else values
        if not np.array_equal(data.astype(np.float32).astype(np.float64), data):
            raise ValueError(f"{base}: quantized values do not fit float32 exactly (ONNX stores float32)")
        k = q.k if isinstance(q, KHotQuantizer) else None
        return self.quant(self.const(base, data), q.format, f"{base}_quant", where, k, identity=True)


def _dims(value: int | tuple[int, ...], nd: int) -> list[int]:
    return list(value) if isinstance(value, tuple) else [int(value)] * nd


def _emit_module(b: _Builder, m: nn.Module, path: str, args: list[str], shape: list[int]) -> str:
    """ONNX nodes for qfx layer `m` (module path `path`, output shape `shape`); returns the output name."""
    name = path.replace(".", "_")
    x = args[0]
    if isinstance(m, qnn.Quant):
        return b.activation(x, m.result_q, name, f"{path}.result", shape)
    if isinstance(m, (qnn.Linear, qnn.Conv1d, qnn.Conv2d)):
        w = m.weight_q(m.weight.detach().double())
        bias = (
            []
            if m.bias_q is None
            else [b.param(m.bias_q, m.bias_q(m.bias.detach().double()), f"{name}_bias", f"{path}.bias")]
        )
        if isinstance(m, qnn.Linear):
            y = b.node(
                "MatMul",
                [x, b.param(m.weight_q, w.T.contiguous(), f"{name}_weight", f"{path}.weight")],
                f"{name}_matmul",
            )
            if bias:
                y = b.node("Add", [y, *bias], f"{name}_add")
        else:
            nd = len(m.kernel_size)
            y = b.node(
                "Conv",
                [x, b.param(m.weight_q, w, f"{name}_weight", f"{path}.weight"), *bias],
                f"{name}_conv",
                kernel_shape=list(m.kernel_size),
                strides=list(m.stride),
                pads=_dims(m.padding, nd) * 2,
                group=m.groups,
                dilations=list(m.dilation),
            )
    elif isinstance(m, qnn.BatchNorm1d | qnn.BatchNorm2d):
        # gamma = scale, beta = shift, mean 0, variance 1, epsilon 0: ONNX's BatchNormalization is then
        # exactly x * scale + shift, which hls4ml's BatchNormalization layer computes.
        scale, shift = m.scale_shift()
        gamma = b.param(m.scale_q, m.scale_q(scale.double()), f"{name}_scale", f"{path}.scale")
        beta = b.param(m.shift_q, m.shift_q(shift.double()), f"{name}_shift", f"{path}.shift")
        channels = scale.shape[0]
        mean = b.const(f"{name}_mean", np.zeros(channels))
        var = b.const(f"{name}_var", np.ones(channels))
        y = b.node("BatchNormalization", [x, gamma, beta, mean, var], f"{name}_bn", epsilon=0.0)
    elif isinstance(m, qnn.ReLU):
        y = b.node("Relu", [x], f"{name}_relu")
    elif isinstance(m, qnn.Add):
        y = b.node("Add", args, f"{name}_add")
    elif isinstance(m, qnn.MaxPool1d | qnn.MaxPool2d | qnn.AvgPool1d | qnn.AvgPool2d):
        nd = 2 if isinstance(m, qnn.MaxPool2d | qnn.AvgPool2d) else 1
        if getattr(m, "ceil_mode", False) or any(d != 1 for d in _dims(getattr(m, "dilation", 1), nd)):
            raise ValueError(f"{path}: pooling with ceil_mode or dilation is not exported; use the defaults")
        op = "MaxPool" if isinstance(m, qnn.MaxPool1d | qnn.MaxPool2d) else "AveragePool"
        y = b.node(
            op,
            [x],
            f"{name}_{op.lower()}",
            kernel_shape=_dims(m.kernel_size, nd),
            strides=_dims(m.stride, nd),
            pads=_dims(m.padding, nd) * 2,
        )
    elif isinstance(m, qnn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ValueError(f"{path}: Flatten({m.start_dim}, {m.end_dim}) is not exported; only Flatten(1, -1)")
        return b.node("Flatten", [x], f"{name}_flatten", axis=1)
    else:
        raise ValueError(f"{name}: {type(m).__name__} is not a qfx fixed-point layer and cannot be exported")
    if m.result_q is None:
        return y
    return b.activation(y, m.result_q, f"{name}_result", f"{path}.result", shape)


def _require_calibrated(model: nn.Module) -> None:
    """ValueError naming the first quantizer whose binary point was never set from data."""
    for path, q in model.named_modules():
        if isinstance(q, FixedQuantizer) and not bool(q.calibrated):
            raise ValueError(
                f"{path or type(model).__name__}: quantizer is not calibrated, so its binary point was never "
                "set from data; run a calibration pass first (qfx.train.calibrate(model, x) on representative "
                "inputs) or train the model (qfx.train.fit). to_onnx does not calibrate on its one example input"
            )


def to_onnx(
    model: nn.Module, example_input: torch.Tensor, path: str | Path, *, strict: bool = False
) -> onnx.ModelProto:
    """Write `model` (a calibrated or trained qfx model) as QONNX to `path`; returns the checked ModelProto.

    One example input fixes the shapes (batch 1 in the graph, as FINN and hls4ml expect) and derives
    every accumulator format; the model itself is left untouched.  A Quant node that other QONNX
    tools would compute differently (see NonStandardQuantWarning) is written with a warning, or
    refused with ValueError when `strict`.
    """
    _require_calibrated(model)
    model = copy.deepcopy(model).double().eval()
    example = example_input.detach().double()[:1]
    with torch.no_grad():
        graph = fx.GraphModule(model, _Tracer().trace(model))
        # Every quantizer is calibrated (checked above) and batch norms are in eval mode, so this run
        # only derives shapes and accumulator formats: it changes no binary point and no statistic.
        shapes = _Shapes(graph)
        shapes.run(example)
    b = _Builder()
    values: dict[str, str] = {}
    inputs, outputs = [], []
    modules = dict(graph.named_modules())
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            values[node.name] = b.unique("global_in")
            inputs.append(helper.make_tensor_value_info(values[node.name], TensorProto.FLOAT, list(example.shape)))
        elif node.op == "call_module":
            args = [values[a.name] for a in node.args if isinstance(a, fx.Node)]
            shape = shapes.shapes.get(node.name, [])
            values[node.name] = _emit_module(b, modules[node.target], node.target, args, shape)
        elif node.op == "call_function" and getattr(node.target, "__name__", "") in ("add", "iadd"):
            raise ValueError(f"{node.name}: a bare `+` has no fixed-point format; use qfx.nn.Add")
        elif node.op == "output":
            out_shape = shapes.shapes[node.args[0].name]
            outputs.append(helper.make_tensor_value_info(values[node.args[0].name], TensorProto.FLOAT, out_shape))
        else:
            raise ValueError(f"{node.name}: `{node.target}` is not a qfx layer; only qfx.nn modules export")
    if b.issues and strict:
        raise ValueError("strict export refused: " + "\n".join(b.issues))
    for issue in b.issues:
        warnings.warn(f"{issue}; to_onnx(..., strict=True) refuses such a model", NonStandardQuantWarning, stacklevel=2)
    onnx_graph = helper.make_graph(b.nodes, "qfx_model", inputs, outputs, b.inits)
    proto = helper.make_model(
        onnx_graph,
        producer_name="qfx",
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
    )
    proto.metadata_props.add(key="qfx_formats", value=json.dumps({k: str(v) for k, v in qnn.formats(model).items()}))
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    onnx.save(proto, tmp)
    tmp.replace(path)
    return proto
