"""What MaxPool and AveragePool share: ONNX's default attributes, the checks, sliding windows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from qfx.hls.ops import Op, attrs, layer_features, pool_passes
from qfx.hls.rtl.arrays import array, windows


def _nd(node) -> int:
    return len(attrs(node)["kernel_shape"])


class Pool(Op):
    """A sliding-window reduction over 1-D or 2-D NCHW data; `pad_value` is what padding reads."""

    defaults = {
        "strides": lambda node, model: [1] * _nd(node),  # ONNX's default stride is 1, not the kernel
        "pads": lambda node, model: [0] * 2 * _nd(node),
        "ceil_mode": 0,
        "auto_pad": "NOTSET",
    }
    hls4ml_quantize_constants = False
    pad_value: float

    def check(self, node, graph):
        a = attrs(node)
        if "kernel_shape" not in a or len(a["kernel_shape"]) not in (1, 2):
            raise ValueError(f"node {node.name}: {node.op_type} needs a 1-D or 2-D kernel_shape")
        for name, ok in (("auto_pad", a["auto_pad"] == "NOTSET"), ("ceil_mode", a["ceil_mode"] == 0)):
            if not ok:
                raise ValueError(f"node {node.name}: {node.op_type} {name}={a[name]} is not supported")
        k, pads = list(a["kernel_shape"]), list(a["pads"])
        if any(p >= k[i % len(k)] for i, p in enumerate(pads)):
            raise ValueError(f"node {node.name}: {node.op_type} pads {pads} must be smaller than the kernel {k}")
        if any(d != 1 for d in a.get("dilations", [1])):
            raise ValueError(f"node {node.name}: {node.op_type} dilations {a['dilations']} are not supported")

    def windows(self, node, shape: tuple[int, ...]) -> np.ndarray:
        """Flat indices of each window of one sample [C, *spatial], -1 where padding is read."""
        a = attrs(node)
        k = list(a["kernel_shape"])
        return windows(shape, k, list(a["strides"]), list(a["pads"]), [1] * len(k))

    def padded(self, node, x: torch.Tensor) -> torch.Tensor:
        pads = list(attrs(node)["pads"])
        nd = len(pads) // 2
        return F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])], value=self.pad_value)

    def reduce(self, node, terms: list, count: int):
        """One output of the traced pool from the window's valid terms."""
        raise NotImplementedError

    def trace(self, node, args, tracer):
        x = args[0]
        idx = self.windows(node, tuple(x.shape[1:]))
        nd = _nd(node)
        flat = np.ravel(x._vars)
        out = np.empty((x.shape[1], *idx.shape[:nd]), dtype=object)
        for pos in np.ndindex(*idx.shape[:nd]):
            for c in range(x.shape[1]):
                window = idx[pos][c].reshape(-1)
                out[(c, *pos)] = self.reduce(node, list(flat[window[window >= 0]]), window.size)
        return array(out[None])

    def pool(self, node, x: torch.Tensor) -> torch.Tensor:
        """The padded input pooled by torch with stride and kernel, no implicit padding."""
        a = attrs(node)
        fn = {
            ("MaxPool", 1): F.max_pool1d,
            ("MaxPool", 2): F.max_pool2d,
            ("AveragePool", 1): F.avg_pool1d,
            ("AveragePool", 2): F.avg_pool2d,
        }[(node.op_type, _nd(node))]
        return fn(self.padded(node, x), list(a["kernel_shape"]), list(a["strides"]))

    def hls4ml_setup(self):
        pool_passes.register()

    def hls4ml_check(self, node, graph):
        pads = list(attrs(node)["pads"])
        if pads[: len(pads) // 2] != pads[len(pads) // 2 :]:
            raise ValueError(
                f"node {node.name}: {node.op_type} pads {pads} are not symmetric; qonnx's channels-last "
                "conversion (which hls4ml needs) takes symmetric pads only"
            )

    def hls4ml_config(self, node, graph, layer):
        """What hls4ml's ONNX pool reader leaves out: count_include_pad, and for 1-D pools the padding and
        the channels-last sizes (it reads [N, L, C] as if it were [N, C, L]). hls4ml copies a layer's
        config keys into its attributes before it validates them."""
        a = attrs(node)
        if a.get("count_include_pad"):
            layer["count_pad"] = True
        if len(a["kernel_shape"]) == 1 and node.domain == "qonnx.custom_op.channels_last":
            _, length, channels = graph.shape(node.input[0])
            pads, k, s = list(a["pads"]), a["kernel_shape"][0], a["strides"][0]
            layer.update(
                n_in=length,
                n_filt=channels,
                pad_left=pads[0],
                pad_right=pads[1],
                n_out=(length + pads[0] + pads[1] - k) // s + 1,
            )

    def features(self, node, graph):
        return layer_features(node, graph, "pool")
