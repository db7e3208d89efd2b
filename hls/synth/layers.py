"""A converted design cut into its hls4ml layers for synthesis one layer at a time: which prepared-graph
nodes make each layer, and each layer's own RTL (its nodes traced alone and pipelined by da4ml, like the
whole design)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from da4ml.codegen import VerilogModel
from da4ml.trace import to_pipeline

from qfx.hls.graph import QonnxGraph
from qfx.hls.hls4ml_graph import hls4ml_name
from qfx.hls.rtl.trace import Tracer
from qfx.hls.rtl.write import layout, tie_weights, used_sources


@dataclass
class Layer:
    name: str  # hls4ml's layer name, or the node's where hls4ml has no layer of it
    nodes: list[str]


def layers(graph: QonnxGraph, hls4ml_layers: list[dict]) -> list[Layer]:
    """The graph's traced nodes grouped as hls4ml groups them: a node hls4ml made a layer of starts one
    (hls4ml names it after the node, e.g. `Dense_<node>`); a node it folded away (an activation quantizer
    merged into the layer before) joins the layer that produced its input. Weight quantizers (evaluated
    once) and the input quantizer (the port's format) make no hardware."""
    names = [layer["name"] for layer in hls4ml_layers if layer["class"] != "Input"]
    out: list[Layer] = []
    owner: dict[str, Layer] = {}  # tensor -> the layer that computes it
    for node in graph.nodes:
        if all(not i or graph.is_constant(i) for i in node.input) or node.input[0] == graph.input_name:
            continue
        own = hls4ml_name(node.name)
        # hls4ml's own name, or its class prefix and the node's (Dense_<node>, Conv2D_<node>)
        match = next(
            (n for n in names if n == own or (n.endswith(f"_{own}") and n.count("_") == own.count("_") + 1)), None
        )
        producers = [owner[i] for i in node.input if i in owner]
        if match is None and producers:
            layer = producers[-1]
            layer.nodes.append(node.name)
        else:
            layer = Layer(match or own, [node.name])
            out.append(layer)
        for o in node.output:
            owner[o] = layer
    return out


def write_layer(tracer: Tracer, layer: Layer, folder: Path, latency_cutoff: float, clock_ns: float) -> list[str]:
    """Write one layer's RTL into `folder/src` (its pipelined core and a top that ties any weight ports to
    their constants); returns the source files relative to `folder`, the top last (module `layer_top`)."""
    traced = tracer.layer(layer.nodes)
    pipe = to_pipeline(traced.comb, latency_cutoff, verbose=False)
    VerilogModel(pipe, "layer_core", folder, clock_period=clock_ns, print_latency=False).write()
    elems = layout(pipe.inp_qint)
    n_data = len(elems) - len(traced.weights)
    data_bits = sum(e.width for e in elems[:n_data])
    in_bits, out_bits = sum(e.width for e in elems), sum(e.width for e in layout(pipe.out_qint))
    data = f"    assign core_in[{data_bits - 1}:0] = in_data;" if data_bits else ""
    top = "\n".join(
        [
            "`timescale 1 ns / 1 ps",
            f"// qfx: layer {layer.name} ({', '.join(layer.nodes)}) alone, for its synthesis figures",
            "module layer_top (",
            "    input clk,",
            f"    input [{max(data_bits, 1) - 1}:0] in_data,",
            f"    output [{max(out_bits, 1) - 1}:0] out_data",
            ");",
            f"    wire [{max(in_bits, 1) - 1}:0] core_in;",
            data,
            *tie_weights(elems[n_data:], traced.weights, "core_in"),
            "    layer_core core (.clk(clk), .model_inp(core_in), .model_out(out_data));",
            "endmodule",
            "",
        ]
    )
    (folder / "src" / "layer_top.v").write_text(top)
    return [str(p.relative_to(folder)) for p in used_sources(folder / "src")]
