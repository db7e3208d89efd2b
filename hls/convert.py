"""QONNX -> hls4ml project for a board, every type exact, C simulation compiled; plus `qfx.json`.

hls4ml does the work (its ONNX frontend, ModelGraph, backends, writers and its precision inference);
qfx prepares the graph, sets the input type to the model's first quantizer, lets hls4ml derive every
accumulator and result ('auto'), and refuses the project if any type is left at the default.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
import onnx
from qfx.hls.qonnx_graph import batchnorm_formats, load, prepare
from qfx.hls.rtl import write_rtl
from qfx.hls.rtl.trace import STYLES

from qfx import boards

PROJECT = "hls4ml_prj"
PROJECT_NAME = "qfx_model"
MANIFEST = "qfx.json"
BACKENDS = {"vitis": "Vitis", "vivado": "Vivado"}
IO_TYPES = {"parallel": "io_parallel", "stream": "io_stream"}
STRATEGIES = {"latency": "Latency", "resource": "Resource"}
# Deliberately odd: any type still equal to it after conversion was never derived from the model.
SENTINEL = "fixed<63,31>"
# Types that exist on a layer but are not used for its arithmetic (lookup tables, indices).
UNUSED_TYPES = ("table_t", "index_t", "exp_table_t", "inv_table_t")


def _choice(name: str, value: str, allowed: dict[str, str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return allowed[value]


def _check_types(hm: hls4ml.model.ModelGraph) -> list[dict[str, Any]]:
    """Every arithmetic type must come from the model; all-zero biases (a MatMul without Add) get 1 bit."""
    layers = []
    for layer in hm.get_layers():
        bias = layer.weights.get("bias") if hasattr(layer, "weights") else None
        if (
            bias is not None
            and not np.any(bias.data)
            and str(layer.types["bias_t"].precision).startswith(SENTINEL[:-1])
        ):
            # In place: the backend has already given the type its C++-writing class.
            precision = layer.types["bias_t"].precision
            precision.width, precision.integer, precision.signed = 1, 1, False
            bias.update_precision(precision)
        types = {k: str(v.precision) for k, v in layer.types.items() if k not in UNUSED_TYPES}
        for role, precision in types.items():
            if precision.startswith(SENTINEL[:-1]):
                raise ValueError(
                    f"layer {layer.name} ({layer.class_name}): {role} was not derived from the model "
                    "(left at hls4ml's default)"
                )
        layers.append({"name": layer.name, "class": layer.class_name, "types": types})
    return layers


def convert(
    onnx_path: str | Path,
    output_dir: str | Path,
    board: str = "ultra96v2",
    backend: str = "vitis",
    io: str = "parallel",
    strategy: str = "latency",
    reuse: int = 1,
    clock: float | None = None,
    force: bool = False,
    rtl: str = "da",
) -> dict[str, Any]:
    """Convert, compile the C simulation, write the RTL (style `rtl`, or "none") and the manifest."""
    target = boards.get(board)
    hls_backend = _choice("backend", backend, BACKENDS)
    io_type = _choice("io", io, IO_TYPES)
    hls_strategy = _choice("strategy", strategy, STRATEGIES)
    if rtl not in (*STYLES, "none"):
        raise ValueError(f"rtl {rtl!r} is not one of {', '.join((*STYLES, 'none'))}")
    if reuse < 1:
        raise ValueError(f"reuse {reuse} must be at least 1")
    clock_ns = clock if clock is not None else target.clock_ns
    if clock_ns <= 0:
        raise ValueError(f"clock {clock_ns} ns must be positive")
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise ValueError(f"{out} exists and is not empty; pass --force to replace it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()

    proto = load(onnx_path)
    model, in_fmt = prepare(proto)
    in_name = model.graph.input[0].name
    in_shape = [int(d) for d in model.get_tensor_shape(in_name)]
    bn_formats = batchnorm_formats(model)
    out.mkdir(parents=True, exist_ok=True)
    try:
        # hls4ml narrates every layer on stdout; keep that in the project as a log instead.
        with open(out / "hls4ml_convert.log", "w") as log, contextlib.redirect_stdout(log):
            config = hls4ml.utils.config_from_onnx_model(
                model, granularity="name", backend=hls_backend, default_precision=SENTINEL, default_reuse_factor=reuse
            )
            config["Model"]["Strategy"] = hls_strategy
            config["LayerName"].setdefault(in_name, {}).setdefault("Precision", {})["result"] = in_fmt.to_hls4ml()
            for bn, (scale, bias) in bn_formats.items():
                precision = config["LayerName"].setdefault(bn, {}).setdefault("Precision", {})
                precision.update({"scale": scale.to_hls4ml(), "bias": bias.to_hls4ml(), "result": "auto"})
            hm = hls4ml.converters.convert_from_onnx_model(
                model,
                output_dir=str(out / PROJECT),
                project_name=PROJECT_NAME,
                backend=hls_backend,
                part=target.part,
                clock_period=clock_ns,
                io_type=io_type,
                hls_config=config,
            )
            layers = _check_types(hm)
            hm.compile()
        onnx.save(proto, out / "model.onnx")
        rtl_summary = None if rtl == "none" else write_rtl(out, rtl, part=target.part, clock_ns=clock_ns)
        out_var = hm.get_output_variables()[0]
        manifest = {
            "board": target.name,
            "part": target.part,
            "family": target.family,
            "clock_ns": clock_ns,
            "backend": backend,
            "io": io,
            "strategy": strategy,
            "reuse": reuse,
            "source": {"path": str(onnx_path), "sha256": hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()},
            "input": {"name": in_name, "shape": in_shape, "format": str(in_fmt)},
            "output": {
                "name": out_var.name,
                "shape": [int(d) for d in out_var.shape],
                "type": str(out_var.type.precision),
            },
            "layers": layers,
            "project": PROJECT,
            "library": str(Path(_library(hm)).relative_to(out.resolve())),
            "qfx_formats": json.loads(_metadata(proto, "qfx_formats") or "{}"),
        }
        if rtl_summary:
            manifest["rtl"] = rtl_summary
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return manifest


def _library(hm: hls4ml.model.ModelGraph) -> str:
    return str(Path(hm._top_function_lib._name).resolve())


def _metadata(proto: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in proto.metadata_props if p.key == key), None)


def read_manifest(project_dir: str | Path) -> dict[str, Any]:
    path = Path(project_dir) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{project_dir}: no {MANIFEST}; is it a directory written by `qfx convert`?")
    return json.loads(path.read_text())


def update_manifest(project_dir: str | Path, key: str, value: Any) -> None:
    """Set one entry of an existing project's manifest."""
    manifest = read_manifest(project_dir)
    manifest[key] = value
    (Path(project_dir) / MANIFEST).write_text(json.dumps(manifest, indent=2))


class CSim:
    """The compiled C simulation library of a converted project.

    hls4ml's link_existing_project cannot reload a project converted from ONNX (its config embeds the
    ModelWrapper), so this loads the bridge library hls4ml compiled and calls its `<project>_double`
    entry point directly, as hls4ml's own predict() does.
    """

    def __init__(self, project_dir: str | Path) -> None:
        project_dir = Path(project_dir)
        manifest = read_manifest(project_dir)
        lib = project_dir / manifest["library"]
        if not lib.is_file():
            raise ValueError(
                f"{project_dir}: the compiled C simulation {manifest['library']} is missing; convert again"
            )
        self._fn = getattr(ctypes.cdll.LoadLibrary(str(lib.resolve())), f"{PROJECT_NAME}_double")
        self.n_in = math.prod(manifest["input"]["shape"][1:])
        self.n_out = math.prod(manifest["output"]["shape"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x [N, n_in] float64, already holding exactly representable input values."""
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(len(x), self.n_in)
        y = np.zeros((len(x), self.n_out), dtype=np.float64)
        ptr = ctypes.POINTER(ctypes.c_double)
        for i in range(len(x)):
            self._fn(x[i].ctypes.data_as(ptr), y[i].ctypes.data_as(ptr))
        return y
