"""The main job end to end on digits: train -> export QONNX -> hls4ml project and RTL for a board -> C
simulation and RTL simulation (cocotb on Verilator) on the whole test set, bit-exact against the emulation."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from qfx.data import digits
from qfx.export import to_onnx
from qfx.hls.convert import convert
from qfx.models import digits_mlp
from qfx.train import fit, save_checkpoint


def run(
    out: Path, bits: int = 6, epochs: int = 60, board: str = "ultra96v2", seed: int = 0, simulator: str = "verilator"
) -> dict:
    """Returns accuracies and mismatch counts; raises if the C simulation or the RTL differs anywhere."""
    from qfx.hls.csim import run_csim
    from qfx.testbench.sim import simulate

    torch.manual_seed(seed)
    data = digits(seed=seed)
    model = digits_mlp(bits)
    print(f"[1/5] training a {bits}-bit QFX MLP 64-64-32-10 on scikit-learn digits")
    fit(model, data, epochs=epochs, seed=seed, log=print)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "model.pt", model, {"name": "digits_mlp", "bits": bits}, {})
    print("[2/5] exporting QONNX")
    x = data.x_test.double()
    to_onnx(model, x[:1], out / "model.onnx")
    print(f"[3/5] converting for {board} with hls4ml, compiling the C simulation, writing RTL")
    t0 = time.perf_counter()
    manifest = convert(out / "model.onnx", out / "hls", board=board, force=True)
    rtl = manifest["rtl"]
    print(
        f"      {time.perf_counter() - t0:.1f} s; input {manifest['input']['format']}; "
        f"{rtl['style']} RTL, latency {rtl['latency']} cycles at II {rtl['ii']}"
    )
    print(f"[4/5] C simulation of all {len(x)} test images")
    emulated = model.double().eval()(x).detach().numpy()
    csim = run_csim(out / "hls", x.numpy())
    mismatches = int((emulated != csim).any(axis=1).sum())
    acc_emu = float((emulated.argmax(1) == data.y_test.numpy()).mean())
    acc_csim = float((csim.argmax(1) == data.y_test.numpy()).mean())
    print(f"[5/5] RTL simulation of all {len(x)} test images (cocotb on {simulator})")
    sim = simulate(out / "hls", x.numpy(), simulator)
    rtl_mismatches = int((emulated != sim.outputs).any(axis=1).sum())
    acc_rtl = float((sim.outputs.argmax(1) == data.y_test.numpy()).mean())
    print(f"      build {sim.build_s:.1f} s, run {sim.run_s:.1f} s, measured latency {sim.latency} cycles")
    print(
        f"accuracy: emulation {100 * acc_emu:.2f}%, C simulation {100 * acc_csim:.2f}%, RTL {100 * acc_rtl:.2f}%; "
        f"mismatching vectors: C simulation {mismatches}, RTL {rtl_mismatches} of {len(x)}"
    )
    print(f"hls4ml project: {out / 'hls' / manifest['project']}  (manifest {out / 'hls' / 'qfx.json'})")
    print(f"RTL: {out / 'hls' / rtl['dir']}  (top {rtl['top']})")
    if mismatches or rtl_mismatches:
        raise SystemExit(f"differences from the emulation: C simulation {mismatches}, RTL {rtl_mismatches} vectors")
    return {
        "accuracy_emulation": acc_emu,
        "accuracy_csim": acc_csim,
        "accuracy_rtl": acc_rtl,
        "mismatches": mismatches,
        "rtl_mismatches": rtl_mismatches,
    }
