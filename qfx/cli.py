"""The `qfx` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qfx.data import digits
from qfx.models import ARCHITECTURES, build
from qfx.train import fit, load_checkpoint, save_checkpoint


def _train(args: argparse.Namespace) -> None:
    arch = {"name": args.arch, "bits": args.bits}
    if args.k_hot is not None:
        if args.arch != "digits_mlp":
            raise ValueError("--k-hot applies to --arch digits_mlp")
        arch["k_hot"] = args.k_hot
    model = build(arch)
    data = digits(seed=args.seed, images=args.arch == "digits_cnn")
    print(
        f"training {args.arch} at {args.bits} bits on scikit-learn digits "
        f"({len(data.y_train)} train / {len(data.y_test)} test images)"
    )
    metrics = fit(model, data, epochs=args.epochs, seed=args.seed, log=print)
    save_checkpoint(args.output, model, arch, metrics)
    print(f"test accuracy (bit-exact emulation): {100 * metrics['test']:.1f}%")
    print(f"checkpoint: {args.output}")
    _print_formats(model.formats())


def _print_formats(formats: dict) -> None:
    width = max(len(n) for n in formats)
    for name, fmt in formats.items():
        print(f"  {name:<{width}}  {fmt}")


def _formats(args: argparse.Namespace) -> None:
    if not args.checkpoint.is_file():
        raise ValueError(f"checkpoint {args.checkpoint} does not exist")
    _, ckpt = load_checkpoint(args.checkpoint)
    _print_formats(ckpt["formats"])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qfx", description="Trainable fixed point to bit-exact FPGA designs")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a QFX model on scikit-learn's digits and save a checkpoint")
    t.add_argument("--arch", choices=sorted(ARCHITECTURES), default="digits_mlp")
    t.add_argument("--bits", type=int, default=8, help="width of weights, biases and activations")
    t.add_argument("--k-hot", type=int, default=None, help="multiplier-free weights with at most K nonzero bits")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", type=Path, default=Path("runs/digits.pt"))
    t.set_defaults(run=_train)
    f = sub.add_parser("formats", help="list the learned format of every tensor in a checkpoint")
    f.add_argument("checkpoint", type=Path)
    f.set_defaults(run=_formats)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as e:
        print(f"qfx {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
