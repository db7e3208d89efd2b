"""Bit-exact emulation of a QONNX graph: float64 arithmetic (exact up to 53-bit sums) and every Quant
node applied as the ap_fixed cast it stands for, with qfx's exact rounding and overflow modes.

qonnx's own executor runs in float32 with numpy rounding; this is the reference the C simulation and
the RTL must match bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from qfx.hls.qonnx_graph import quant_format
from qonnx.core.modelwrapper import ModelWrapper


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pool(x: torch.Tensor, a: dict, op: str) -> torch.Tensor:
    k = list(a["kernel_shape"])
    strides = list(a.get("strides", k))
    pads = list(a.get("pads", [0] * 2 * len(k)))
    if pads[: len(k)] != pads[len(k) :]:
        raise ValueError(f"{op}: asymmetric pads {pads} are not supported")
    fn = {
        ("MaxPool", 1): F.max_pool1d,
        ("MaxPool", 2): F.max_pool2d,
        ("AveragePool", 1): F.avg_pool1d,
        ("AveragePool", 2): F.avg_pool2d,
    }[(op, len(k))]
    kwargs = {"count_include_pad": False} if op == "AveragePool" else {}
    return fn(x, k, strides, pads[: len(k)], **kwargs)


def _conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, a: dict) -> torch.Tensor:
    nd = w.dim() - 2
    pads = list(a.get("pads", [0] * 2 * nd))
    if pads[:nd] != pads[nd:]:
        x = F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
        pads = [0] * 2 * nd
    fn = F.conv1d if nd == 1 else F.conv2d
    return fn(
        x, w, b, list(a.get("strides", [1] * nd)), pads[:nd], list(a.get("dilations", [1] * nd)), int(a.get("group", 1))
    )


class Emulator:
    """Runs the graph on float64 inputs of shape [N, ...] (any batch size)."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        self.model = ModelWrapper(proto)
        self.consts = {
            t.name: torch.from_numpy(numpy_helper.to_array(t).astype(np.float64)) for t in proto.graph.initializer
        }
        self.formats = {n.name: quant_format(self.model, n) for n in proto.graph.node if n.op_type == "Quant"}

    def run(self, x: np.ndarray) -> np.ndarray:
        graph = self.model.graph
        values: dict[str, torch.Tensor] = dict(self.consts)
        values[graph.input[0].name] = torch.as_tensor(np.asarray(x, dtype=np.float64))
        for node in graph.node:
            args = [values[i] if i else None for i in node.input]
            values[node.output[0]] = self.op(node, args)
        return values[graph.output[0].name].numpy()

    def op(self, node: onnx.NodeProto, args: list[torch.Tensor | None]) -> torch.Tensor:
        """One node on float64 tensors."""
        a = _attrs(node)
        x = args[0]
        ops: dict[str, Callable[[], torch.Tensor]] = {
            "Quant": lambda: self.formats[node.name].quantize(x),
            "BipolarQuant": lambda: torch.where(x >= 0, 1.0, -1.0).double(),
            "MatMul": lambda: torch.matmul(x, args[1]),
            "Gemm": lambda: self._gemm(args, a),
            "Conv": lambda: _conv(x, args[1], args[2] if len(args) > 2 else None, a),
            "Add": lambda: x + args[1],
            "Mul": lambda: x * args[1],
            "Relu": lambda: torch.relu(x),
            "MaxPool": lambda: _pool(x, a, "MaxPool"),
            "AveragePool": lambda: _pool(x, a, "AveragePool"),
            "Flatten": lambda: x.reshape(int(np.prod(x.shape[: int(a.get("axis", 1))])), -1),
            "Reshape": lambda: self._reshape(x, args[1]),
            "Transpose": lambda: x.permute(*a["perm"]),
            "Identity": lambda: x,
            "BatchNormalization": lambda: self._batchnorm(args, a),
        }
        if node.op_type not in ops:
            raise ValueError(f"node {node.name}: op type {node.op_type} cannot be emulated")
        return ops[node.op_type]()

    @staticmethod
    def _gemm(args: list, a: dict) -> torch.Tensor:
        x, w = args[0], args[1]
        x = x.T if a.get("transA", 0) else x
        w = w.T if a.get("transB", 0) else w
        y = a.get("alpha", 1.0) * (x @ w)
        return y + a.get("beta", 1.0) * args[2] if len(args) > 2 and args[2] is not None else y

    @staticmethod
    def _reshape(x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        dims = [int(d) for d in shape.tolist()]
        dims[0] = x.shape[0] if dims[0] in (0, 1) else dims[0]  # the graph's batch of 1 stands for any batch
        return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(dims)])

    @staticmethod
    def _batchnorm(args: list, a: dict) -> torch.Tensor:
        x, gamma, beta, mean, var = args[:5]
        view = [1, -1] + [1] * (x.dim() - 2)
        scale = gamma / torch.sqrt(var + a.get("epsilon", 1e-5))
        return x * scale.reshape(view) + (beta - mean * scale).reshape(view)
