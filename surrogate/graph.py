"""Per-layer graphs for the surrogates: from a layer list (wa-hls4ml rows, the HTTP API), an ONNX/QONNX
model or a qfx project, to node features, data-flow edges and global features."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from hls4ml.backends import get_backend

from qfx.hls import host, ops
from qfx.hls.project import Project
from qfx.surrogate.dataset import DEFAULT_BITS

# "activation": a table-based nonlinearity (sigmoid, tanh, softmax), unlike ReLU's comparison
LAYER_TYPES = ("dense", "conv", "batchnorm", "relu", "activation", "add", "pool")
# After the type one-hot: what wa-hls4ml's per-layer features describe (sizes, precision, reuse) plus
# ours (K-hot weights, binary layers), sizes on a log2 scale.
NUMERIC = (
    "n_in",
    "n_out",
    "kernel",
    "positions",
    "weight_bits",
    "act_bits",
    "k_hot",
    "binary",
    "macs",
    "params",
    "reuse",  # as hls4ml builds it: legalized under the Resource strategy
    "macs_per_reuse",
    "bit_ops",
    "weight_storage",
    "storage_per_reuse",
    "block_factor",
)
NODE_FEATURES = len(LAYER_TYPES) + len(NUMERIC)
GLOBAL_FEATURES = (
    "resource",
    "io_stream",
    "reuse",
    "clock_ns",
    "ultrascale",
    "macs",
    "bit_ops",
    "layers",
    "reuse_sum",  # layers run one after another under io_parallel: their reuse factors add up to the latency
)


@dataclass
class Graph:
    nodes: np.ndarray  # [n, NODE_FEATURES]
    edges: np.ndarray  # [2, e], data flow both ways
    globals: np.ndarray  # [len(GLOBAL_FEATURES)]


def _log2(v: float) -> float:
    return math.log2(1.0 + max(float(v), 0.0))


def _check_layer(i: int, layer: dict) -> dict:
    if not isinstance(layer, dict):
        raise ValueError(f"layer {i}: expected an object, got {type(layer).__name__}")
    kind = layer.get("type")
    if kind not in LAYER_TYPES:
        raise ValueError(f"layer {i}: type {kind!r} is not one of {', '.join(LAYER_TYPES)}")
    for key in ("n_in", "n_out"):
        v = layer.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"layer {i} ({kind}): {key} must be a positive integer, got {v!r}")
    for key in ("kernel", "positions", "weight_bits", "act_bits", "reuse", "k_hot"):
        v = layer.get(key, 1)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise ValueError(f"layer {i} ({kind}): {key} must be a non-negative number, got {v!r}")
    return layer


@cache
def legal_reuse(n_in: int, n_out: int, reuse: int) -> int:
    """The reuse factor hls4ml's Resource strategy builds a layer with: the valid one closest to the request
    (hls4ml warns and substitutes it; the cycle counts of real reports follow it, not the request)."""
    backend = get_backend("Vitis")
    # hls4ml's get_valid_reuse_factors tries every value up to n_in * n_out (seconds for a large layer, an
    # easy way to stall the HTTP service); its rule admits divisors of n_in * n_out only, so ask it of those.
    size = n_in * n_out
    divisors = {d for k in range(1, math.isqrt(size) + 1) if size % k == 0 for d in (k, size // k)}
    valid = sorted(d for d in divisors if backend._validate_reuse_factor(n_in, n_out, d))
    return backend.get_closest_reuse_factor(valid, reuse)


def layer_reuse(layer: dict, reuse: int, resource: bool) -> int:
    """A layer's own reuse factor, or the model's, legalized the way hls4ml does for weighted layers."""
    r = max(int(layer.get("reuse", reuse)), 1)
    if resource and layer["type"] in ("dense", "conv"):
        # hls4ml's multiplier shape for a layer: n_in x n_out, a convolution's n_in counting its kernel
        return legal_reuse(layer["n_in"] * layer.get("kernel", 1), layer["n_out"], r)
    return r


def node_features(layer: dict, reuse: int, resource: bool = False) -> np.ndarray:
    kind = layer["type"]
    kernel, positions = layer.get("kernel", 1), layer.get("positions", 1)
    wb, ab = layer.get("weight_bits", 0), layer.get("act_bits", DEFAULT_BITS)
    has_weights = kind in ("dense", "conv", "batchnorm")
    params = (
        layer["n_in"] * layer["n_out"] * kernel if kind in ("dense", "conv") else (layer["n_out"] * 2 * has_weights)
    )
    macs = params * positions if kind in ("dense", "conv") else layer["n_out"] * positions * has_weights
    r = layer_reuse(layer, reuse, resource)
    numeric = [
        _log2(layer["n_in"]),
        _log2(layer["n_out"]),
        _log2(kernel),
        _log2(positions),
        float(wb),
        float(ab),
        float(layer.get("k_hot", 0)),
        float(layer.get("binary", 0)),
        _log2(macs),
        _log2(params),
        _log2(r),
        _log2(macs / r),
        _log2(macs * max(wb, 1) * max(ab, 1)),
        _log2(params * wb),  # weight bits to store: what BRAM holds under the Resource strategy
        _log2(params * wb / r),  # bits read per cycle: the memory's width
        _log2(math.ceil(params / r)),  # hls4ml's block factor: multipliers in flight
    ]
    onehot = [float(kind == t) for t in LAYER_TYPES]
    return np.array(onehot + numeric, dtype=np.float32)


def build(
    layers: list[dict],
    strategy: str = "latency",
    io_type: str = "io_parallel",
    reuse: int = 1,
    clock_ns: float = 5.0,
    part: str = "",
) -> Graph:
    """A chain graph of the layers in data-flow order (residual branches collapse into the chain)."""
    if not isinstance(layers, list) or not layers:
        raise ValueError("layers must be a non-empty list")
    layers = [_check_layer(i, layer) for i, layer in enumerate(layers)]
    resource = strategy.lower() == "resource"
    nodes = np.stack([node_features(layer, reuse, resource) for layer in layers])
    n = len(layers)
    src = np.arange(n - 1)
    edges = np.concatenate([np.stack([src, src + 1]), np.stack([src + 1, src]), np.stack([np.arange(n)] * 2)], axis=1)
    macs = sum(2 ** nodes[i, len(LAYER_TYPES) + NUMERIC.index("macs")] - 1 for i in range(n))
    bit_ops = sum(2 ** nodes[i, len(LAYER_TYPES) + NUMERIC.index("bit_ops")] - 1 for i in range(n))
    reuse_sum = sum(layer_reuse(layer, reuse, resource) for layer in layers if layer["type"] in ("dense", "conv"))
    g = np.array(
        [
            float(resource),
            float("stream" in io_type.lower()),
            _log2(reuse),
            float(clock_ns),
            float(part.lower().startswith(("xczu", "xcu", "xcvu", "xcku"))),
            _log2(macs),
            _log2(bit_ops),
            float(n),
            _log2(reuse_sum),
        ],
        dtype=np.float32,
    )
    return Graph(nodes, edges.astype(np.int64), g)


def from_row(row: dict) -> Graph:
    return build(
        json.loads(row["layers"]), row["strategy"], row["io_type"], int(row["reuse"]), row["clock_ns"], row["part"]
    )


def layers_from_onnx(proto: onnx.ModelProto, reuse: int = 1) -> list[dict]:
    """The compute layers of an ONNX/QONNX graph with their sizes and precisions, as each op module
    describes them (Quant nodes fold into the layers they feed; unknown bit widths take the default); float
    preprocessing runs on the host, as `qfx convert` cuts it, and a float tail counts as hls4ml would build it."""
    _, graph = host.prepared_split(proto, tail="hw")
    layers = []
    for node in graph.nodes:
        layer = ops.get(node).features(node, graph)
        if layer is None:
            continue
        for key in ("weight_bits", "act_bits"):
            if key in layer and layer[key] is None:
                layer[key] = DEFAULT_BITS
        if layer["type"] in ("dense", "conv"):
            layer["reuse"] = reuse
        layers.append(layer)
    if not layers:
        raise ValueError("the graph has no layers to estimate")
    return layers


def from_onnx(proto: onnx.ModelProto, reuse: int = 1, **options: object) -> Graph:
    """The graph of an ONNX/QONNX model; options are build()'s strategy, io_type, clock_ns and part."""
    return build(layers_from_onnx(proto, reuse), reuse=reuse, **options)


def from_project(project: str | Path | Project) -> Graph:
    """A qfx project: its prepared graph with the strategy, io type, reuse, part and clock it was converted with."""
    project = Project.open(project)
    return from_onnx(
        project.graph.proto,
        int(project["reuse"]),
        strategy=project["strategy"],
        io_type=f"io_{project['io']}",
        clock_ns=float(project["clock_ns"]),
        part=project["part"],
    )
