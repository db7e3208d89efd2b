"""An hls4ml 1.3.0 optimizer pass that gives the activation hls4ml makes of a Quant node the ap_fixed
modes qfx read from it. hls4ml's Quant handling only builds RND_CONV/TRN with SAT/SAT_SYM; the width
and integer bits it derives are right, so only the modes change (what precision inference needs is
unchanged). Added to hls4ml's `parse_qonnx` flow, after which the activation still exists (its `convert`
flow merges it into the layer before, carrying the type)."""

from __future__ import annotations

from hls4ml.model.flow import update_flow
from hls4ml.model.layers import Activation
from hls4ml.model.optimizer import OptimizerPass, register_pass
from hls4ml.model.quantizers import QuantNodeQuantizer
from hls4ml.model.types import FixedPrecisionType

CONFIG_KEY = "QfxFormat"  # the per-layer hls4ml config entry holding qfx's format of a Quant node


class ExactQuantModes(OptimizerPass):
    """The result type of a Quant's activation gets the rounding and overflow mode of qfx's format."""

    def match(self, node) -> bool:
        wanted = node.model.config.get_layer_config(node).get(CONFIG_KEY) if isinstance(node, Activation) else None
        if wanted is None:
            return False
        p = node.get_output_variable().type.precision
        return (p.rounding_mode.name, p.saturation_mode.name) != (wanted["rounding"], wanted["overflow"])

    def transform(self, model, node) -> bool:
        wanted = model.config.get_layer_config(node)[CONFIG_KEY]
        p = node.get_output_variable().type.precision
        if (p.width, p.integer, p.signed) != (wanted["width"], wanted["integer"], wanted["signed"]):
            raise ValueError(
                f"layer {node.name}: hls4ml typed the Quant as {p}, not the {wanted['text']} qfx read from it"
            )
        exact = FixedPrecisionType(p.width, p.integer, p.signed, wanted["rounding"], wanted["overflow"])
        # the activation's type, and its quantizer, whose type hls4ml's merge_linear_activation gives the layer
        # before when it folds the activation into it
        node.get_output_variable().type.precision = exact
        node.set_attr("quantizer", QuantNodeQuantizer(exact))
        model.config.get_layer_config(node).setdefault("Precision", {})["result"] = str(exact)
        return False


_registered: list[str] = []


def register() -> None:
    """The pass, once per process (hls4ml refuses a pass registered twice)."""
    if not _registered:
        register_pass("qfx_exact_quant_modes", ExactQuantModes)
        update_flow("parse_qonnx", add_optimizers=["qfx_exact_quant_modes"])
        _registered.append("qfx_exact_quant_modes")
