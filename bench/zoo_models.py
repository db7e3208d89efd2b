"""The public QONNX-zoo topologies rebuilt locally with seeded random weights (nothing is downloaded): FINN's
TFC/SFC/LFC and CNV (Brevitas's own bnn_pynq classes, the ones the zoo files were exported from), a
keyword-spotting and a network-intrusion MLP (Brevitas), and hls4ml's jet tagger (QKeras-like, onnx.helper).

Each builder writes one QONNX file and says what inputs the model takes.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import SignedBinaryActPerTensorConst
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
from brevitas_examples.bnn_pynq.models.FC import FC
from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
from onnx import TensorProto, helper, numpy_helper
from torch import nn

Inputs = Callable[[np.random.Generator, int], np.ndarray]
DOMAIN = "qonnx.custom_op.general"


@dataclass
class ZooModel:
    """A written QONNX file and a generator of n inputs of the kind it takes (float32 values, float64 array)."""

    path: Path
    inputs: Inputs
    about: str


def pixels(shape: tuple[int, ...]) -> Inputs:
    """8-bit image pixels k/255, as MNIST and CIFAR-10 arrive (the models map them to [-1, 1] themselves)."""
    return lambda rng, n: (rng.integers(0, 256, (n, *shape)) / 255).astype(np.float32).astype(np.float64)


def normal(shape: tuple[int, ...], std: float) -> Inputs:
    return lambda rng, n: rng.normal(0, std, (n, *shape)).astype(np.float32).astype(np.float64)


def binary(shape: tuple[int, ...]) -> Inputs:
    return lambda rng, n: rng.integers(0, 2, (n, *shape)).astype(np.float64)


def settle(model: nn.Module, x: torch.Tensor, seed: int) -> nn.Module:
    """BatchNorm statistics from a few passes on random inputs (so thresholds fall inside the activations'
    range, as after training), then randomized: mean and variance jittered, random scale (a tenth of it
    negative) and shift. Learned activation scales settle on the same passes. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, TensorNorm))]
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a plain average over the passes
    with torch.no_grad():
        for chunk in x.split(64):
            model(chunk)
    model.eval()
    with torch.no_grad():
        for m in norms:
            n = m.running_mean.numel()
            std = m.running_var.sqrt()
            m.running_mean += torch.randn(n, generator=g) * 0.2 * std
            m.running_var *= torch.rand(n, generator=g) + 0.5
            sign = torch.where(torch.rand(n, generator=g) < 0.1, -1.0, 1.0)
            m.weight.copy_(sign * (torch.rand(n, generator=g) + 0.5))
            m.bias.copy_(torch.randn(n, generator=g) * 0.5)
    return model


def export(model: nn.Module, sample: torch.Tensor, path: Path, dynamo: bool) -> Path:
    """Brevitas's export_qonnx, quietly; `dynamo` False is the TorchScript exporter the public files came from.
    Node metadata (stack traces) dropped and weights kept inline, so the file stands alone."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(model, input_t=sample, export_path=str(path), dynamo=dynamo)
    proto = onnx.load(path)
    for node in proto.graph.node:
        del node.metadata_props[:]
    onnx.save(proto, path)
    Path(f"{path}.data").unlink(missing_ok=True)
    return path


def brevitas_model(model: nn.Module, inputs: Inputs, path: Path, seed: int, dynamo: bool, about: str) -> ZooModel:
    """Settle the model on its own kind of inputs and write it."""
    x = torch.from_numpy(inputs(np.random.default_rng(seed), 512)).float()
    settle(model, x, seed)
    return ZooModel(export(model, x[:1], path, dynamo), inputs, about)


def finn_fc(hidden: int, w: int, a: int) -> Callable[[Path, int, bool], ZooModel]:
    """FINN's TFC/SFC/LFC (784-h-h-h-10): 2x-1 of the pixels, binary or 2-bit input quantizer, bias-free
    QuantLinear -> BatchNorm1d -> QuantIdentity, a last QuantLinear and TensorNorm; Brevitas's FC class."""

    def build(path: Path, seed: int, dynamo: bool) -> ZooModel:
        torch.manual_seed(seed)
        in_bits = 1 if a == 1 else 2  # as in bnn_pynq's cfg files
        model = FC(num_classes=10, weight_bit_width=w, act_bit_width=a, in_bit_width=in_bits, in_channels=1,
                   out_features=[hidden] * 3)  # fmt: skip
        shape = (1, 28, 28)
        return brevitas_model(model, pixels(shape), path, seed, dynamo, f"784-{hidden}x3-10 {w}W{a}A")

    return build


class CNV(nn.Module):
    """FINN's CNV (bnn_pynq's CNV class) with every width divided by `divisor`: 2x-1 of the pixels, an
    8-bit Q1.7 input quantizer, six unpadded 3x3 QuantConv2d -> BatchNorm2d -> QuantIdentity (max pooling
    after the second and fourth), two QuantLinear -> BatchNorm1d -> QuantIdentity, QuantLinear, TensorNorm."""

    def __init__(self, w: int, a: int, divisor: int) -> None:
        super().__init__()
        from brevitas.core.restrict_val import RestrictValueType

        act = {"act_quant": CommonActQuant, "bit_width": a}
        weight = {"weight_quant": CommonWeightQuant, "weight_bit_width": w, "bias": False}
        layers: list[nn.Module] = [
            qnn.QuantIdentity(act_quant=CommonActQuant, bit_width=8, min_val=-1.0, max_val=1.0 - 2.0**-7,
                              narrow_range=False, restrict_scaling_type=RestrictValueType.POWER_OF_TWO)
        ]  # fmt: skip
        ch = 3
        for out, pool in ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False)):
            out //= divisor
            layers += [qnn.QuantConv2d(ch, out, 3, **weight), nn.BatchNorm2d(out, eps=1e-4), qnn.QuantIdentity(**act)]
            layers += [nn.MaxPool2d(2)] if pool else []
            ch = out
        fc = 512 // divisor
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            qnn.QuantLinear(ch, fc, **weight), nn.BatchNorm1d(fc, eps=1e-4), qnn.QuantIdentity(**act),
            qnn.QuantLinear(fc, fc, **weight), nn.BatchNorm1d(fc, eps=1e-4), qnn.QuantIdentity(**act),
            qnn.QuantLinear(fc, 10, **weight), TensorNorm(),
        )  # fmt: skip
        for m in self.modules():
            if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear)):
                nn.init.uniform_(m.weight.data, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - torch.tensor([1.0])
        return self.fc(self.conv(x).flatten(1))


def finn_cnv(divisor: int) -> Callable[[Path, int, bool], ZooModel]:
    def build(path: Path, seed: int, dynamo: bool) -> ZooModel:
        torch.manual_seed(seed)
        shape = (3, 32, 32)
        about = f"CNV 1W1A, channels /{divisor}" if divisor > 1 else "CNV 1W1A"
        return brevitas_model(CNV(1, 1, divisor), pixels(shape), path, seed, dynamo, about)

    return build


def kws_mlp(path: Path, seed: int, dynamo: bool) -> ZooModel:
    """Keyword spotting on 490 MFCC features (FINN's KWS MLP, 490-64-64-64-12): an 8-bit input quantizer with a
    learned float scale (Brevitas's default Int8ActPerTensorFloat), 3-bit weights and activations, BatchNorm."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [qnn.QuantIdentity(bit_width=8)]
    for a, b in ((490, 64), (64, 64), (64, 64)):
        layers += [qnn.QuantLinear(a, b, bias=True, weight_bit_width=3), nn.BatchNorm1d(b), qnn.QuantReLU(bit_width=3)]
    layers.append(qnn.QuantLinear(64, 12, bias=True, weight_bit_width=3))
    shape = (490,)
    return brevitas_model(nn.Sequential(*layers), normal(shape, 2.0), path, seed, dynamo, "490-64x3-12 3W3A")


class Bipolar(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1


def intrusion_mlp(path: Path, seed: int, dynamo: bool) -> ZooModel:
    """Network intrusion on UNSW-NB15's 593 binary features (FINN's cybersecurity notebook, 593-64-64-64-1,
    2-bit weights and activations, BatchNorm): {0,1} mapped by x*2-1 to a bipolar input quantizer, and the
    notebook's bipolar output quantizer."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [Bipolar(), qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)]
    for a, b in ((593, 64), (64, 64), (64, 64)):
        layers += [qnn.QuantLinear(a, b, bias=True, weight_bit_width=2), nn.BatchNorm1d(b), qnn.QuantReLU(bit_width=2)]
    layers += [qnn.QuantLinear(64, 1, bias=True, weight_bit_width=2)]
    layers += [qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)]
    shape = (593,)
    return brevitas_model(nn.Sequential(*layers), binary(shape), path, seed, dynamo, "593-64x3-1 2W2A")


def jet_tagger(path: Path, seed: int, dynamo: bool) -> ZooModel:
    """hls4ml's jet tagger (16-64-32-32-5) as QKeras converts to QONNX: quantized_bits(6,0) weights and biases
    (scale 2^-5), quantized_relu(6) activations (2^-6), an 8-bit input quantizer, MatMul + Add, a Softmax."""
    del dynamo  # written with onnx.helper
    rng = np.random.default_rng(seed)
    widths = (16, 64, 32, 32, 5)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: object) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(x: str, out: str, scale: float, bits: int, signed: int) -> str:
        ins = [x, const(f"{out}_scale", scale), const(f"{out}_zeropt", 0.0), const(f"{out}_bitwidth", bits)]
        nodes.append(helper.make_node("Quant", ins, [out], out, domain=DOMAIN, signed=signed, narrow=0,
                                      rounding_mode="ROUND"))  # fmt: skip
        return out

    h = quant("global_in", "input_quant", 2.0**-4, 8, 1)
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        w = quant(const(f"dense_{i}_w", rng.normal(0, 1 / np.sqrt(a), (a, b))), f"dense_{i}_wq", 2.0**-5, 6, 1)
        bias = quant(const(f"dense_{i}_b", rng.normal(0, 0.2, b)), f"dense_{i}_bq", 2.0**-5, 6, 1)
        nodes.append(helper.make_node("MatMul", [h, w], [f"dense_{i}_mm"], f"dense_{i}_MatMul"))
        nodes.append(helper.make_node("Add", [f"dense_{i}_mm", bias], [f"dense_{i}_out"], f"dense_{i}_Add"))
        h = f"dense_{i}_out"
        if i < len(widths) - 2:
            nodes.append(helper.make_node("Relu", [h], [f"relu_{i}"], f"relu_{i}"))
            h = quant(f"relu_{i}", f"relu_{i}_quant", 2.0**-6, 6, 0)
    nodes.append(helper.make_node("Softmax", [h], ["softmax"], "softmax", axis=-1))
    graph = helper.make_graph(
        nodes,
        "jet_tagger",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, widths[0]])],
        [helper.make_tensor_value_info("softmax", TensorProto.FLOAT, [1, widths[-1]])],
        inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets, producer_name="qonnx-like"), path)
    return ZooModel(path, normal((widths[0],), 2.0), "16-64-32-32-5 6-bit, Softmax")


# Small models first; LFC and CNV take long (qfx's RTL, hls4ml's compile) and come last.
BUILDERS: dict[str, Callable[[Path, int, bool], ZooModel]] = {
    "jet_tagger": jet_tagger,
    "tfc_1w1a": finn_fc(64, 1, 1),
    "tfc_1w2a": finn_fc(64, 1, 2),
    "tfc_2w2a": finn_fc(64, 2, 2),
    "kws_mlp": kws_mlp,
    "intrusion_mlp": intrusion_mlp,
    "sfc_1w1a": finn_fc(256, 1, 1),
    "sfc_1w2a": finn_fc(256, 1, 2),
    "sfc_2w2a": finn_fc(256, 2, 2),
    "lfc_1w1a": finn_fc(1024, 1, 1),
    "lfc_1w2a": finn_fc(1024, 1, 2),
    "lfc_2w2a": finn_fc(1024, 2, 2),
    "cnv_1w1a": finn_cnv(4),
}
BIG = ("lfc_1w1a", "lfc_1w2a", "lfc_2w2a", "cnv_1w1a")
