"""Digits accuracy, one run, side by side: float, post-training quantization (PTQ), Brevitas
fixed-point QAT (biases and accumulators in float, its usual setup) and QFX (every tensor in fixed
point, binary points learned), plain and multiplier-free (K-hot), at several widths.

Prints a table and writes bench/results/quant_accuracy.json.  Needs `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from torch import nn

from qfx.data import Split, digits
from qfx.models import digits_mlp
from qfx.train import accuracy, calibrate, exact_accuracy, fit

HIDDEN = (64, 32)


def float_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def brevitas_mlp(bits: int) -> nn.Sequential:
    act = {"act_quant": Uint8ActPerTensorFixedPoint, "bit_width": bits}
    weight = {"weight_quant": Int8WeightPerTensorFixedPoint, "weight_bit_width": bits, "bias": True}
    return nn.Sequential(
        QuantIdentity(**act),
        QuantLinear(64, 64, **weight),
        QuantReLU(**act),
        QuantLinear(64, 32, **weight),
        QuantReLU(**act),
        QuantLinear(32, 10, **weight),
    )


def ptq(trained_float: nn.Sequential, bits: int, data: Split) -> float:
    """Copy float weights into the QFX model, set every binary point from the training data, no training."""
    model = digits_mlp(bits, HIDDEN)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for dst, src in zip(linears, [m for m in trained_float if isinstance(m, nn.Linear)], strict=True):
        dst.load_state_dict(src.state_dict(), strict=False)  # quantizers calibrate below
    calibrate(model, data.x_train)
    return exact_accuracy(model, data.x_test, data.y_test)


def run(widths: list[int], seeds: list[int], epochs: int) -> dict:
    results: dict[str, dict[str, list[float]]] = {}

    def add(method: str, bits: int | str, acc: float) -> None:
        results.setdefault(method, {}).setdefault(str(bits), []).append(100 * acc)

    for seed in seeds:
        data = digits(seed=seed)
        torch.manual_seed(seed)
        ref = float_mlp()
        fit(ref, data, epochs=epochs, seed=seed)
        add("float", "32", accuracy(ref, data.x_test, data.y_test))
        for bits in widths:
            t0 = time.perf_counter()
            add("PTQ (max calibration)", bits, ptq(ref, bits, data))
            torch.manual_seed(seed)
            brev = brevitas_mlp(bits)
            fit(brev, data, epochs=epochs, seed=seed)
            add("Brevitas fixed-point QAT", bits, accuracy(brev, data.x_test, data.y_test))
            for label, k_hot in (("QFX", None), ("QFX K-hot K=2", 2), ("QFX K-hot K=1", 1)):
                torch.manual_seed(seed)
                model = digits_mlp(bits, HIDDEN, k_hot=k_hot)
                add(label, bits, fit(model, data, epochs=epochs, seed=seed)["test"])
            print(f"seed {seed}  {bits} bits done in {time.perf_counter() - t0:.0f} s", flush=True)
    return results


def table(results: dict, widths: list[int]) -> str:
    cols = [str(b) for b in widths]
    lines = [f"{'method':<26}" + "".join(f"{b + ' bits':>16}" for b in cols), "-" * (26 + 16 * len(cols))]
    for method, by_bits in results.items():
        cells = []
        for b in cols if method != "float" else ["32"] * len(cols):
            accs = by_bits.get(b)
            cells.append(f"{statistics.mean(accs):6.2f} ± {statistics.pstdev(accs):4.2f}" if accs else "")
        lines.append(f"{method:<26}" + "".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[8, 6, 4, 3])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "quant_accuracy.json")
    args = p.parse_args()
    t0 = time.perf_counter()
    results = run(args.widths, args.seeds, args.epochs)
    print(
        f"\nMLP 64-64-32-10 on scikit-learn digits, 80/20 stratified split, {args.epochs} epochs, "
        f"test accuracy % (mean ± std over seeds {args.seeds}), {time.perf_counter() - t0:.0f} s"
    )
    print(table(results, args.widths))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"epochs": args.epochs, "seeds": args.seeds, "test_accuracy_percent": results}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
