"""What every qfx layer shares: named quantizers, the formats they learned, exact accumulators."""

from __future__ import annotations

import torch
from torch import nn

from qfx.fixed import FixedFormat
from qfx.quant import FixedQuantizer, Spec, tag


def result_quantizer(result: Spec | int | None) -> FixedQuantizer | None:
    """The per-tensor quantizer of a layer's output; None keeps the exact accumulator as the output."""
    return None if result is None else Spec.of(result).build()


class FixedLayer(nn.Module):
    """A layer whose every tensor has a fixed-point format.

    Derived (exact) formats are recorded on forward in `_exact`; mixed with torch layers whose
    __init__ must run first, so this class has no __init__ of its own.
    """

    result_q: FixedQuantizer | None

    def record(self, role: str, fmt: FixedFormat) -> None:
        self.__dict__.setdefault("_exact", {})[role] = fmt

    def finish(self, acc: torch.Tensor, acc_format: FixedFormat) -> torch.Tensor:
        """Record the exact accumulator format, then quantize to the result format (if any)."""
        self.record("accum", acc_format)
        if self.result_q is None:
            return tag(acc, acc_format)
        return self.result_q(acc)

    def keep(self, y: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
        """Output of an op that is exact in its input format (ReLU, max, reshape), re-quantized if asked."""
        if self.result_q is not None:
            return self.result_q(y)
        self.record("result", fmt)
        return tag(y, fmt)

    def formats(self) -> dict[str, FixedFormat]:
        """Format of each tensor of this layer, by role (weight, bias, accum, result...)."""
        out = {
            name.removesuffix("_q"): q.format
            for name, q in self.named_children()
            if isinstance(q, FixedQuantizer) and name != "result_q"
        }
        exact = self.__dict__.get("_exact", {})
        out.update(exact)
        if self.result_q is not None:
            out["result"] = self.result_q.format
        elif "accum" in exact:
            out["result"] = exact["accum"]
        return out


def formats(model: nn.Module) -> dict[str, FixedFormat]:
    """Every fixed-point tensor of a model, named `<module path>.<role>`, in forward-definition order.

    Derived formats (accumulators) are known once the model has run a forward pass.
    """
    out: dict[str, FixedFormat] = {}
    for path, module in model.named_modules():
        if isinstance(module, FixedLayer):
            for role, fmt in module.formats().items():
                out[f"{path}.{role}" if path else role] = fmt
    return out


class FixedModel(nn.Module):
    """Base for user models: adds `model.formats()`."""

    def formats(self) -> dict[str, FixedFormat]:
        return formats(self)


class Sequential(nn.Sequential):
    """nn.Sequential with `formats()`."""

    def formats(self) -> dict[str, FixedFormat]:
        return formats(self)


class Quant(FixedLayer):
    """Quantizes a real tensor (typically the model input) to a learned fixed-point format."""

    def __init__(self, spec: Spec | int, channels: int = 1, axis: int = 1) -> None:
        super().__init__()
        self.result_q = Spec.of(spec).build(channels, axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.result_q(x)
