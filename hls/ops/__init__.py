"""The op registry: each ONNX op qfx knows is one module here that defines, once, how it is read and
checked, its exact emulation, its RTL trace, what hls4ml makes of it, and its surrogate features.

Ops register by decorator, as hls4ml registers its per-op handlers; the supported-op list is derived
from the registry. Adding an op means adding one module here (every module of the package is imported) and its tests.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import onnx
from onnx import helper

if TYPE_CHECKING:
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from qfx.hls.graph import QonnxGraph
    from qfx.hls.rtl.trace import Tracer


@dataclass(frozen=True)
class Bounds:
    """What a tensor can hold: every value lies in [lo, hi] on the grid of 2^-frac (thresholds that replace
    float ops are placed on that grid and clipped to that range)."""

    lo: float
    hi: float
    frac: int

    @classmethod
    def of(cls, values: np.ndarray) -> Bounds:
        """The bounds of a set of known values (a constant): its range and the finest binary point it uses."""
        v = np.asarray(values, dtype=np.float64).ravel()
        frac = max((_mantissa_bits(x) - math.frexp(x)[1] for x in v if x != 0), default=0)
        return cls(float(v.min(initial=0.0)), float(v.max(initial=0.0)), max(frac, 0))

    def __add__(self, other: Bounds) -> Bounds:
        return Bounds(self.lo + other.lo, self.hi + other.hi, max(self.frac, other.frac))

    def scaled(self, c: np.ndarray) -> Bounds:
        """x * c for x within these bounds and c any of the given constants."""
        c = np.asarray(c, dtype=np.float64).ravel()
        ends = np.concatenate([c * self.lo, c * self.hi])
        return Bounds(float(ends.min()), float(ends.max()), self.frac + Bounds.of(c).frac)

    def dot(self, w: np.ndarray) -> Bounds:
        """Sums over axis 0 of w[k, m] * x_k (a dense or convolution layer; a padded input is a zero term)."""
        w = np.asarray(w, dtype=np.float64).reshape(len(w), -1)
        hi = np.maximum(np.maximum(w * self.lo, w * self.hi), 0).sum(0)
        lo = np.minimum(np.minimum(w * self.lo, w * self.hi), 0).sum(0)
        return Bounds(float(lo.min(initial=0.0)), float(hi.max(initial=0.0)), self.frac + Bounds.of(w).frac)


def _mantissa_bits(x: float) -> int:
    """Bits of x's mantissa after the point, up to its last 1 (x = m * 2^e with 0.5 <= |m| < 1)."""
    m = int(abs(math.frexp(x)[0]) * 2**53)
    return 53 - ((m & -m).bit_length() - 1)


class Op:
    """One ONNX op type. Subclasses override what they support; the defaults refuse, naming the node."""

    op_type: ClassVar[str]
    # Attributes a legal file may omit, with ONNX's defaults (callables get the node and the qonnx
    # ModelWrapper, for defaults that depend on other attributes or shapes, e.g. a Conv's kernel_shape).
    defaults: ClassVar[dict[str, Any]] = {}
    # False for ops that are estimated but have no exact fixed-point meaning yet (convert refuses them).
    exact: ClassVar[bool] = True
    # hls4ml types constant inputs of this op at its default precision unless they go through a Quant:
    # qfx inserts an exact one (see QuantizeFloatConstants).
    hls4ml_quantize_constants: ClassVar[bool] = True
    # True for ops that only move or select values (reshapes, transposes, max): the output keeps the input's bounds.
    moves_values: ClassVar[bool] = False

    def lower(self, node: onnx.NodeProto, model: ModelWrapper) -> list[onnx.NodeProto] | None:
        """Nodes of other ops that compute exactly what this node computes, put in its place while the graph
        is prepared (their constants set on `model`); None keeps the node."""
        return None

    def check(self, node: onnx.NodeProto, graph: QonnxGraph) -> None:
        """Refuse, with a ValueError naming the node, what qfx cannot compute exactly."""

    def emulate(self, node: onnx.NodeProto, args: list[torch.Tensor | None], graph: QonnxGraph) -> torch.Tensor:
        """The node on float64 tensors [N, ...], exactly as the hardware computes it."""
        raise ValueError(f"node {node.name}: op type {node.op_type} has no exact emulation")

    def trace(self, node: onnx.NodeProto, args: list, tracer: Tracer) -> Any:
        """The node on da4ml symbolic arrays of one sample (the RTL's arithmetic)."""
        raise ValueError(f"node {node.name}: op type {node.op_type} has no RTL")

    def bounds(self, node: onnx.NodeProto, inputs: list[Bounds | None], graph: QonnxGraph) -> Bounds | None:
        """The range and grid of the node's output given its variable inputs' (None for a constant
        input); None when unknown."""
        return inputs[0] if self.moves_values else None

    def hls4ml_setup(self) -> None:
        """Register what hls4ml or qonnx need for this op (passes, channels-last handlers); runs once."""

    def hls4ml_check(self, node: onnx.NodeProto, graph: QonnxGraph) -> None:
        """Refuse what hls4ml 1.3.0 computes differently from the ONNX meaning, naming the node."""

    def hls4ml_config(self, node: onnx.NodeProto, graph: QonnxGraph, layer: dict[str, Any]) -> None:
        """Per-layer hls4ml configuration (`config['LayerName'][node.name]`), on the graph hls4ml reads."""

    def features(self, node: onnx.NodeProto, graph: QonnxGraph) -> dict[str, Any] | None:
        """The surrogate's layer description, or None when the op folds into its neighbours."""
        return None


REGISTRY: dict[str, Op] = {}


def register(op_type: str):
    """Class decorator: register one instance of the class as the handler of `op_type`."""

    def wrap(cls: type[Op]) -> type[Op]:
        if op_type in REGISTRY:
            raise ValueError(f"op type {op_type} is registered twice")
        cls.op_type = op_type
        REGISTRY[op_type] = cls()
        return cls

    return wrap


def get(node: onnx.NodeProto) -> Op:
    """The handler of a node's op type, or a ValueError naming the node and what is supported."""
    op = REGISTRY.get(node.op_type)
    if op is None:
        raise ValueError(
            f"node {node.name or '(unnamed)'}: op type {node.op_type} is not supported "
            f"(supported: {', '.join(supported_ops())})"
        )
    return op


def setup_hls4ml() -> None:
    """Every op's hls4ml registrations, once per process (hls4ml's registries are global and refuse repeats)."""
    for op in REGISTRY.values():
        if not getattr(op, "_hls4ml_ready", False):
            op.hls4ml_setup()
            op._hls4ml_ready = True


def supported_ops() -> tuple[str, ...]:
    """Op types that convert exactly, derived from the registry."""
    return tuple(sorted(t for t, op in REGISTRY.items() if op.exact))


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as Python values (strings decoded), constant defaults of its op filled in."""
    op = REGISTRY.get(node.op_type)
    out = {k: v for k, v in op.defaults.items() if not callable(v)} if op is not None else {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def layer_features(node: onnx.NodeProto, graph: QonnxGraph, kind: str) -> dict[str, Any]:
    """The surrogate's description of a layer without weights: its kind, sizes and input bit width."""
    return {
        "type": kind,
        "n_in": graph.size(node.input[0]),
        "n_out": graph.size(node.output[0]),
        "act_bits": graph.bits(node.input[0]),
    }


def _import_op_modules() -> None:
    """Import every module of this package: importing an op module registers its ops."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_op_modules()
