"""Writes the QONNX files in this folder with Brevitas's own exporter (`export_qonnx`), small imitations of
public Brevitas/FINN models: float scales, BatchNorm with random statistics, bipolar inputs, Trunc.

Run by hand with the bench extra installed (`pip install -e .[bench]`): `python tests/data/brevitas/write.py`.
The files are committed; tests/test_brevitas_files.py converts every one of them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFixedPoint,
    SignedBinaryActPerTensorConst,
    Uint8ActPerTensorFixedPoint,
)
from torch import nn

HERE = Path(__file__).parent


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Random running statistics and affine parameters for every BatchNorm, then eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
            m.weight.data.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A few training-mode passes so learned activation scales move off their init (non-power-of-two)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.train()
    for m in bns:
        m.eval()  # keep the random statistics
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


class Bipolar(nn.Module):
    """x*2-1: {0,1} inputs to {-1,1}, a plain torch op before the first quantizer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1


class ResBlock(nn.Module):
    """Conv-BN-ReLU, a residual 1x1 conv branch, both requantized by one shared QuantIdentity before the Add."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=bits, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.skip = qnn.QuantConv2d(1, 8, 1, weight_bit_width=bits, bias=False)
        self.shared = qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True)
        self.pool = qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=bits)
        self.fc = qnn.QuantLinear(8 * 4 * 4, 5, weight_bit_width=bits, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        main = self.shared(self.relu(self.bn(self.conv(x))))
        skip = self.shared(self.skip(x))
        y = self.pool(main + skip)
        return self.fc(torch.flatten(y, 1))


def mlp_per_channel_weights() -> tuple[nn.Module, torch.Tensor]:
    """Brevitas's defaults (the examples' 8-bit QuantLinear): float per-tensor input scale, per-channel float
    weight scales, BatchNorm, a 4-bit QuantReLU."""
    model = nn.Sequential(
        qnn.QuantIdentity(),  # Int8ActPerTensorFloat
        qnn.QuantLinear(16, 32, bias=True, weight_quant=Int8WeightPerChannelFloat),
        nn.BatchNorm1d(32),
        qnn.QuantReLU(bit_width=4),
        qnn.QuantLinear(32, 5, bias=True, weight_quant=Int8WeightPerChannelFloat),
    )
    return model, torch.randn(64, 16)


def mlp_bn_before_quant() -> tuple[nn.Module, torch.Tensor]:
    """FINN's TFC (2W2A): bias-free QuantLinear -> BatchNorm1d -> 2-bit QuantIdentity, twice, a last
    QuantLinear and a float BatchNorm1d tail (FINN's TensorNorm, an affine per output)."""
    layers: list[nn.Module] = [qnn.QuantIdentity(bit_width=2)]
    for a, b in ((32, 24), (24, 24)):
        layers += [qnn.QuantLinear(a, b, bias=False, weight_bit_width=2), nn.BatchNorm1d(b)]
        layers.append(qnn.QuantIdentity(bit_width=2))
    layers += [qnn.QuantLinear(24, 10, bias=False, weight_bit_width=2), nn.BatchNorm1d(10)]
    return nn.Sequential(*layers), torch.randn(64, 32)


def cnn_resnet_trunc() -> tuple[nn.Module, torch.Tensor]:
    """A 4-bit ResNet-style block on 1x8x8 images (Brevitas's quantized ResNet examples): a residual Add of
    two branches sharing one quantizer, then TruncAvgPool2d (a QONNX Trunc), flatten, QuantLinear."""
    return ResBlock(4), torch.randn(64, 1, 8, 8)


def mlp_bipolar_inputs() -> tuple[nn.Module, torch.Tensor]:
    """The network-intrusion MLP of FINN's cybersecurity notebooks: {0,1} features as x*2-1, a bipolar
    input quantizer, 2-bit weights, BatchNorm, 2-bit QuantReLU."""
    model = nn.Sequential(
        Bipolar(),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
        qnn.QuantLinear(48, 32, bias=True, weight_bit_width=2),
        nn.BatchNorm1d(32),
        qnn.QuantReLU(bit_width=2),
        qnn.QuantLinear(32, 1, bias=True, weight_bit_width=2),
    )
    return model, torch.randint(0, 2, (64, 48)).float()


def mlp_pow2_scales() -> tuple[nn.Module, torch.Tensor]:
    """The control qfx converts today: fixed-point (power-of-two) quantizers everywhere, no BatchNorm."""
    weight = {"weight_quant": Int8WeightPerTensorFixedPoint, "bias": True}
    model = nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint),
        qnn.QuantLinear(16, 32, **weight),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint),
        qnn.QuantLinear(32, 16, **weight),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=6),
        qnn.QuantLinear(16, 5, **weight),
    )
    return model, torch.randn(64, 16)


def tidy(path: Path) -> None:
    """One reproducible file: node metadata dropped (stack traces naming this machine's paths and this script's
    lines) and the weights stored inline (the dynamo exporter writes them to a .onnx.data file beside it)."""
    model = onnx.load(path)
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, path)
    Path(f"{path}.data").unlink(missing_ok=True)


MODELS = [mlp_per_channel_weights, mlp_bn_before_quant, cnn_resnet_trunc, mlp_bipolar_inputs, mlp_pow2_scales]
# Also written by the TorchScript exporter (Brevitas's default before torch 2.9, how the public files were
# written): Transpose + MatMul for Gemm, and Trunc's input bit width as a Log/Div/Ceil chain of constants.
TORCHSCRIPT = [cnn_resnet_trunc]


def main() -> None:
    for seed, build in enumerate(MODELS):
        for dynamo in (True, False) if build in TORCHSCRIPT else (True,):
            torch.manual_seed(seed)
            model, sample = build()
            calibrate(randomize_bn(model, seed), sample)
            path = HERE / f"{build.__name__}{'' if dynamo else '_torchscript'}.onnx"
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                export_qonnx(model, input_t=sample[:1], export_path=str(path), dynamo=dynamo)
            tidy(path)
            print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
