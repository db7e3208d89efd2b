"""Tracing a prepared QONNX graph into a da4ml fixed-point program: the RTL's arithmetic, node for node.

The walk mirrors `qfx.hls.emulate.Emulator`: nodes whose inputs are all constants (weight quantizers)
are evaluated by the emulator itself; every other node is traced by its op module on da4ml's symbolic
arrays, whose ops are exact, so the traced program computes exactly what the emulation computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from da4ml.trace import FixedVariable, FixedVariableArray, FixedVariableArrayInput, comb_trace
from da4ml.types import CombLogic, minimal_kif

from qfx.exact import exact_format
from qfx.fixed import FixedFormat
from qfx.hls import ops
from qfx.hls.emulate import Emulator
from qfx.hls.graph import QonnxGraph
from qfx.hls.rtl.arrays import HWCONF, array, kif

STYLES = ("da", "mult")


@dataclass
class Traced:
    """A traced graph: the combinational program, its input format and the weights fed in as ports."""

    comb: CombLogic
    weights: np.ndarray  # constant values of the weight ports (multiplier style), in port order
    input_format: FixedFormat | None  # None for a layer traced alone (its inputs are earlier layers' values)
    input_shape: list[int]
    output_shape: list[int]


class Tracer:
    """Walks the graph once on symbolic arrays of one sample ([1, ...]), as the emulator walks tensors."""

    def __init__(self, graph: QonnxGraph, style: str = "da") -> None:
        if style not in STYLES:
            raise ValueError(f"style {style!r} is not one of {', '.join(STYLES)}")
        self.graph = graph
        self.emulator = Emulator(graph)
        self.style = style
        self.weight_vars: list[FixedVariable] = []
        self.weight_values: list[float] = []

    @staticmethod
    def is_variable(x: object) -> bool:
        return isinstance(x, FixedVariableArray)

    def run(self) -> Traced:
        """The whole graph; afterwards `values` holds every tensor, for tracing layers alone."""
        shape = self.graph.shape(self.graph.input_name)
        shape[0] = 1
        inp = FixedVariableArrayInput(tuple(shape), hwconf=HWCONF)
        self.values: dict[str, object] = {k: v.numpy() for k, v in self.emulator.consts.items()}
        self.values[self.graph.input_name] = inp
        for node in self.graph.nodes:
            args = [self.values[i] if i else None for i in node.input]
            if not any(self.is_variable(a) for a in args):
                tensors = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in args]
                self.values[node.output[0]] = self.emulator.op(node, tensors).numpy()
            elif args[0] is inp and node.op_type == "Quant":
                # The port carries the first quantizer's bits (applied by the caller, as for the C
                # simulation), so the cast only declares the port's format.
                self.values[node.output[0]] = inp.quantize(*kif(self.graph.format(node)), "WRAP", "TRN")
            elif any(a is inp for a in args):
                raise ValueError(f"node {node.name}: the graph input must go through a Quant node first")
            else:
                self.values[node.output[0]] = ops.get(node).trace(node, args, self)
        out = self.values[self.graph.output_name]
        if not self.is_variable(out):
            raise ValueError(f"graph output {self.graph.output_name} does not depend on the input")
        in_fmt = self.graph.input_format()
        return Traced(*self._program([inp], [out]), in_fmt, shape, list(out.shape))

    def _program(self, inputs: list[FixedVariableArray], outputs: list[FixedVariableArray]) -> tuple:
        """The combinational program from the data inputs and the weight ports made since the last call."""
        weights, values = self.weight_vars, self.weight_values
        self.weight_vars, self.weight_values = [], []
        ports = [v for x in inputs for v in np.ravel(x._vars)] + weights
        comb = comb_trace(ports, [v for x in outputs for v in np.ravel(x._vars)], keep_dead_inputs=True)
        return comb, np.array(values, dtype=np.float64)

    def layer(self, names: list[str]) -> Traced:
        """The nodes `names` (in graph order, after `run`) as a program of their own: each tensor they read
        from outside becomes an input port in the exact format it has there; its outputs are the tensors
        that leave the layer. What synthesis of one layer measures."""
        nodes = [n for n in self.graph.nodes if n.name in names]
        written = {o for n in nodes for o in n.output}
        local = dict(self.values)
        inputs = []
        for name in dict.fromkeys(i for n in nodes for i in n.input if i and i not in written):
            value = self.values[name]
            if not self.is_variable(value):
                continue
            kifs = np.array([minimal_kif(v.qint) for v in np.ravel(value._vars)]).reshape(*value.shape, 3)
            k, i, f = kifs[..., 0], kifs[..., 1], kifs[..., 2]
            port = FixedVariableArrayInput(value.shape, hwconf=HWCONF)
            inputs.append(port)
            local[name] = port.quantize(k, i, f, "WRAP", "TRN")
        for node in nodes:
            local[node.output[0]] = ops.get(node).trace(node, [local[i] if i else None for i in node.input], self)
        graph = self.graph
        # what leaves the layer: tensors read by other layers, and the graph's output
        leaving = [
            o
            for n in nodes
            for o in n.output
            if o == graph.output_name or any(c.name not in names for c in graph.consumers(o))
        ] or [nodes[-1].output[0]]
        outs = [local[o] for o in leaving]
        shape = [int(d) for d in inputs[0].shape] if inputs else []
        return Traced(*self._program(inputs, outs), None, shape, list(outs[-1].shape))

    def constant(self, w: np.ndarray, where: str) -> np.ndarray | FixedVariableArray:
        """A constant multiplicand: a float array for distributed arithmetic (da4ml solves the constant
        products into adder graphs), or, in multiplier style, ports tied to the constants by the top module,
        so each product is a plain `x * w` multiplier; zeros and powers of two stay constants (no product
        or a shift, as synthesis would make of them)."""
        if self.style == "da":
            return w
        fmt = exact_format(w, where)
        k, i, f = kif(fmt)
        out = np.empty(w.shape, dtype=object)
        for idx, value in np.ndenumerate(w):
            if value == 0 or math.log2(abs(value)).is_integer():
                out[idx] = FixedVariable.from_const(float(value), HWCONF)
                continue
            port = FixedVariableArrayInput((1,), hwconf=HWCONF)
            self.weight_vars.append(port._vars[0])
            self.weight_values.append(float(value))
            out[idx] = port.quantize(k, i, f, "WRAP", "TRN")._vars[0]
        return array(out)

    def matmul(self, x: FixedVariableArray, w: np.ndarray, where: str) -> FixedVariableArray:
        if self.is_variable(w):
            raise ValueError(f"node {where}: a product of two variables has no RTL here")
        return x @ self.constant(np.asarray(w), where)

    def scale(self, x: FixedVariableArray, c: np.ndarray, where: str) -> FixedVariableArray:
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), x.shape)
        return x * self.constant(c, where) if self.style == "mult" else x * c


def trace(graph: QonnxGraph, style: str = "da") -> Traced:
    """The graph as one combinational da4ml program (data inputs first, then any weight ports)."""
    return Tracer(graph, style).run()
