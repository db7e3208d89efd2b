"""Export a qfx model to standard ONNX in which every fixed-point tensor is a QONNX ``Quant`` node.

A ``Quant`` node (domain ``qonnx.custom_op.general``) with scale 2^-F, zero point 0 and bit width W
is exactly ap_fixed<W, W-F> with saturation, which QONNX tools (Brevitas, FINN, hls4ml) understand.
What QONNX cannot say travels as extra node attributes that qfx reads back: ``qfx_rounding`` and
``qfx_overflow`` (the exact ap_fixed modes) and ``qfx_k_hot``.  Weights are stored already quantized,
so their ``Quant`` node is an identity and per-channel binary points survive in a union format.
"""

from __future__ import annotations

import copy
import json
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
# QONNX rounding_mode strings that are exactly an ap_fixed quantization mode.
QONNX_ROUNDING = {
    "RND_CONV": "ROUND",
    "TRN": "FLOOR",
    "TRN_ZERO": "DOWN",
    "RND_INF": "HALF_UP",
    "RND_ZERO": "HALF_DOWN",
}
OPSET = 13


class _Tracer(fx.Tracer):
    """Keeps every qfx layer (and plain torch modules) a leaf, so the graph is layer by layer."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, qnn.FixedLayer) or super().is_leaf_module(m, qualname)


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.names: set[str] = set()

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

    def quant(self, x: str, fmt: FixedFormat, base: str, k_hot: int | None = None) -> str:
        """A QONNX Quant node for `fmt` (saturating, as QONNX defines it) with qfx's exact modes attached."""
        scale = self.const(f"{base}_scale", np.float32(2.0**-fmt.frac_bits))
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
        return self.node("Quant", [x, scale, zero, bits], base, domain=QONNX_DOMAIN, **attrs)

    def param(self, q: FixedQuantizer, values: torch.Tensor | np.ndarray, base: str) -> str:
        """A parameter already quantized by `q`, stored as float32 behind an identity Quant of q's format."""
        data = values.detach().numpy() if isinstance(values, torch.Tensor) else values
        if not np.array_equal(data.astype(np.float32).astype(np.float64), data):
            raise ValueError(f"{base}: quantized values do not fit float32 exactly (ONNX stores float32)")
        k = q.k if isinstance(q, KHotQuantizer) else None
        return self.quant(self.const(base, data), q.format, f"{base}_quant", k)


def _dims(value: int | tuple[int, ...], nd: int) -> list[int]:
    return list(value) if isinstance(value, tuple) else [int(value)] * nd


def _emit_module(b: _Builder, m: nn.Module, name: str, args: list[str]) -> str:
    x = args[0]
    if isinstance(m, qnn.Quant):
        return b.quant(x, m.result_q.format, name)
    if isinstance(m, (qnn.Linear, qnn.Conv1d, qnn.Conv2d)):
        w = m.weight_q(m.weight.detach().double())
        bias = [] if m.bias_q is None else [b.param(m.bias_q, m.bias_q(m.bias.detach().double()), f"{name}_bias")]
        if isinstance(m, qnn.Linear):
            y = b.node("MatMul", [x, b.param(m.weight_q, w.T.contiguous(), f"{name}_weight")], f"{name}_matmul")
            if bias:
                y = b.node("Add", [y, *bias], f"{name}_add")
        else:
            nd = len(m.kernel_size)
            y = b.node(
                "Conv",
                [x, b.param(m.weight_q, w, f"{name}_weight"), *bias],
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
        gamma = b.param(m.scale_q, m.scale_q(scale.double()), f"{name}_scale")
        beta = b.param(m.shift_q, m.shift_q(shift.double()), f"{name}_shift")
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
        return b.node("Flatten", [x], f"{name}_flatten", axis=m.start_dim)
    else:
        raise ValueError(f"{name}: {type(m).__name__} is not a qfx fixed-point layer and cannot be exported")
    return b.quant(y, m.result_q.format, f"{name}_result") if m.result_q is not None else y


def to_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path) -> onnx.ModelProto:
    """Write `model` (a qfx model) as QONNX to `path`; returns the checked ModelProto.

    One example input fixes the shapes (batch 1 in the graph, as FINN and hls4ml expect) and derives
    every accumulator format; the model itself is left untouched.
    """
    model = copy.deepcopy(model).double().eval()
    example = example_input.detach().double()[:1]
    with torch.no_grad():
        out_shape = list(model(example).shape)
        graph = fx.GraphModule(model, _Tracer().trace(model))
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
            values[node.name] = _emit_module(b, modules[node.target], node.target.replace(".", "_"), args)
        elif node.op == "call_function" and getattr(node.target, "__name__", "") in ("add", "iadd"):
            raise ValueError(f"{node.name}: a bare `+` has no fixed-point format; use qfx.nn.Add")
        elif node.op == "output":
            outputs.append(helper.make_tensor_value_info(values[node.args[0].name], TensorProto.FLOAT, out_shape))
        else:
            raise ValueError(f"{node.name}: `{node.target}` is not a qfx layer; only qfx.nn modules export")
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
