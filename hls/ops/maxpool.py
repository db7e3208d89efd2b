"""`MaxPool`: padding reads -inf (ONNX), so only a window's real elements count."""

from __future__ import annotations

from qfx.hls.ops import attrs, register
from qfx.hls.ops.pooling import Pool


@register("MaxPool")
class MaxPool(Pool):
    pad_value = float("-inf")

    def emulate(self, node, args, emu):
        return self.pool(node, args[0])

    def reduce(self, node, terms, count):
        acc = terms[0]
        for t in terms[1:]:
            acc = acc.max_of(t)
        return acc

    def hls4ml_check(self, node, graph):
        a = attrs(node)
        if len(a["kernel_shape"]) == 1:
            raise ValueError(
                f"node {node.name}: 1-D MaxPool is not converted: hls4ml 1.3.0's 1-D pooling reader leaves "
                "pad_left unset and fails"
            )
        if any(a["pads"]) and not _signed_input(node, graph):
            raise ValueError(
                f"node {node.name}: MaxPool with padding on an unsigned input is not converted: hls4ml 1.3.0 "
                "pads with the bit pattern 100..0, a large positive value for ap_ufixed (ONNX pads with -inf)"
            )


def _signed_input(node, graph) -> bool:
    producer = graph.producer(node.input[0])
    return producer is not None and producer.op_type == "Quant" and graph.format(producer).signed
