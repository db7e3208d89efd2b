"""Bit-exact emulation of a prepared QONNX graph: float64 arithmetic (exact up to 53-bit sums) and every
Quant node applied as the ap_fixed cast it stands for, with qfx's exact rounding and overflow modes.

qonnx's own executor runs in float32 with numpy rounding; this is the reference the C simulation and
the RTL must match bit for bit. Each node's meaning comes from its op module (`qfx.hls.ops`).
"""

from __future__ import annotations

import numpy as np
import torch

from qfx.hls import ops
from qfx.hls.graph import QonnxGraph


class Emulator:
    """Runs the graph on float64 inputs of shape [N, ...] (any batch size).

    With `stats=True` it counts, per quantizer of variable data, the values cast, the ties and the
    values that saturated or wrapped (`self.events`), so a proof that never met an edge is visible.
    """

    def __init__(self, graph: QonnxGraph, stats: bool = False) -> None:
        self.graph = graph
        self.consts = {t.name: torch.from_numpy(graph.initializer(t.name)) for t in graph.model.graph.initializer}
        self.stats = {} if stats else None

    def record(self, name: str, counts: dict[str, int]) -> None:
        totals = self.stats.setdefault(name, {})
        for key, n in counts.items():
            totals[key] = totals.get(key, 0) + n

    def run(self, x: np.ndarray) -> np.ndarray:
        values: dict[str, torch.Tensor] = dict(self.consts)
        values[self.graph.input_name] = torch.as_tensor(np.asarray(x, dtype=np.float64))
        for node in self.graph.nodes:
            values[node.output[0]] = self.op(node, [values[i] if i else None for i in node.input])
        return values[self.graph.output_name].numpy()

    def op(self, node, args: list[torch.Tensor | None]) -> torch.Tensor:
        """One node on float64 tensors."""
        return ops.get(node).emulate(node, args, self)
