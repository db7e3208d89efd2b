"""The main job end to end on digits: train -> export QONNX -> hls4ml project for a board -> C
simulation on the whole test set, bit-exact against the emulation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from hls.convert import convert
from qfx.data import digits
from qfx.export import to_onnx
from qfx.models import digits_mlp
from qfx.train import fit, save_checkpoint


def run(out: Path, bits: int = 6, epochs: int = 60, board: str = "ultra96v2", seed: int = 0) -> dict:
    """Returns accuracies and the mismatch count; raises if the C simulation differs anywhere."""
    from hls.csim import run_csim

    torch.manual_seed(seed)
    data = digits(seed=seed)
    model = digits_mlp(bits)
    print(f"[1/4] training a {bits}-bit QFX MLP 64-64-32-10 on scikit-learn digits")
    fit(model, data, epochs=epochs, seed=seed, log=print)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "model.pt", model, {"name": "digits_mlp", "bits": bits}, {})
    print("[2/4] exporting QONNX")
    x = data.x_test.double()
    to_onnx(model, x[:1], out / "model.onnx")
    print(f"[3/4] converting for {board} with hls4ml and compiling the C simulation")
    t0 = time.perf_counter()
    manifest = convert(out / "model.onnx", out / "hls", board=board, force=True)
    print(f"      {time.perf_counter() - t0:.1f} s; input {manifest['input']['format']}")
    print(f"[4/4] C simulation of all {len(x)} test images")
    emulated = model.double().eval()(x).detach().numpy()
    csim = run_csim(out / "hls", x.numpy())
    mismatches = int((emulated != csim).any(axis=1).sum())
    acc_emu = float((emulated.argmax(1) == data.y_test.numpy()).mean())
    acc_csim = float((csim.argmax(1) == data.y_test.numpy()).mean())
    print(
        f"accuracy: emulation {100 * acc_emu:.2f}%, C simulation {100 * acc_csim:.2f}%; "
        f"mismatching vectors: {mismatches} of {len(x)}; max |diff| {np.abs(emulated - csim).max():g}"
    )
    print(f"hls4ml project: {out / 'hls' / manifest['project']}  (manifest {out / 'hls' / 'qfx.json'})")
    if mismatches:
        raise SystemExit(f"C simulation differs from the emulation on {mismatches} vectors")
    return {"accuracy_emulation": acc_emu, "accuracy_csim": acc_csim, "mismatches": mismatches}
