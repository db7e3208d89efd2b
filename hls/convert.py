"""QONNX -> hls4ml project for a board, every type exact, C simulation compiled; plus RTL and `qfx.json`.

hls4ml does the work (its ONNX frontend, ModelGraph, backends, writers and its precision inference);
qfx prepares the graph, sets the input type to the model's first quantizer, lets hls4ml derive every
accumulator and result ('auto'), and refuses the project if any type is left at the default. The
folder replaces an old one only when complete (and proven, when a check is given).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
import onnx

from qfx import boards
from qfx.fixed import FixedFormat
from qfx.hls import float_model, host, ops
from qfx.hls.csim import emulate
from qfx.hls.graph import QonnxGraph, load
from qfx.hls.hls4ml_graph import for_hls4ml
from qfx.hls.project import MANIFEST, MODEL, PROJECT, PROJECT_NAME, Project, replacing_dir, write_json
from qfx.hls.rtl.trace import STYLES
from qfx.hls.rtl.write import write_rtl

BACKENDS = {"vitis": "Vitis", "vivado": "Vivado"}
IO_TYPES = {"parallel": "io_parallel", "stream": "io_stream"}
STRATEGIES = {"latency": "Latency", "resource": "Resource"}
RTL_STYLES = (*STYLES, "none")
# Deliberately odd: any type still equal to it after conversion was never derived from the model.
SENTINEL = "fixed<63,31>"
# Types that exist on a layer but are not used for its arithmetic (lookup tables, indices).
UNUSED_TYPES = ("table_t", "index_t", "exp_table_t", "inv_table_t")


class StageError(ValueError):
    """A tool (hls4ml, g++, da4ml) failed on input qfx accepted: one line naming the stage."""


@contextlib.contextmanager
def stage(name: str, log: Path | None = None) -> Iterator[None]:
    """Turn any failure inside a tool into a StageError naming the stage, the tool's last word and the
    first error line of its log (the log goes with the failed project)."""
    try:
        yield
    except StageError:
        raise
    except ValueError as e:  # a refusal: qfx's own names its node; the stage says where it came up
        raise ValueError(f"{name}: {e}") from None
    except Exception as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
        lines = log.read_text(errors="replace").splitlines() if log is not None and log.is_file() else []
        first = next((line.strip() for line in lines if "error" in line.lower()), "")
        detail = f" ({first[:300]})" if first else ""
        raise StageError(f"{name} failed: {type(e).__name__}: {reason}{detail}") from e


def _choice(name: str, value: str, allowed: dict[str, str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return allowed[value] if isinstance(allowed, dict) else value


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


def _hls4ml_config(model: Any, graph_in: str, in_fmt: Any, backend: str, strategy: str, reuse: int) -> dict:
    """hls4ml's per-layer configuration: the input type, each op's own entries, derived types elsewhere."""
    config = hls4ml.utils.config_from_onnx_model(
        model, granularity="name", backend=backend, default_precision=SENTINEL, default_reuse_factor=reuse
    )
    config["Model"]["Strategy"] = strategy
    config["LayerName"].setdefault(graph_in, {}).setdefault("Precision", {})["result"] = in_fmt.to_hls4ml()
    final = QonnxGraph(model)
    for node in final.nodes:
        ops.get(node).hls4ml_config(node, final, config["LayerName"].setdefault(node.name, {}))
    return config


def _float_model(
    proto: onnx.ModelProto, source: Path, precision: str | None, calibration: np.ndarray | None, bits: int
) -> dict[str, Any] | None:
    """For a float model: the model with the formats written in, and how they were chosen; None otherwise."""
    if not float_model.is_float_model(proto):
        if precision is not None or calibration is not None:
            raise ValueError(f"{source} has Quant nodes: --precision and --calibrate are for float models")
        return None
    if precision is None and calibration is None:
        raise ValueError(
            f"{source} is a float model (no Quant node): pass a precision (--precision 'ap_fixed<16,6>', "
            "hls4ml's default) or calibration inputs (--calibrate X.npy --bits N)"
        )
    if not 2 <= bits <= 32:
        raise ValueError(f"bits {bits} must be between 2 and 32")
    fmt = FixedFormat.parse(precision) if precision is not None else None
    if calibration is not None:
        calibration = np.asarray(calibration, dtype=np.float64)
        if calibration.ndim < 2 or not len(calibration) or not np.isfinite(calibration).all():
            raise ValueError(f"calibration inputs of shape {list(calibration.shape)}: need [N, ...] finite samples")
    model, formats = float_model.quantize(proto, fmt, calibration, bits)
    if fmt is not None:
        how: dict[str, Any] = {"precision": str(fmt)}
    else:
        how = {"calibrated_bits": bits, "calibration_inputs": len(calibration)}
    return {"model": model, "how": how, "formats": formats, "inputs": calibration}


def _output_change(project: Project, reference_model: onnx.ModelProto, floating: dict[str, Any]) -> dict[str, Any]:
    """The float model against the converted design on the calibration inputs (or 500 standard-normal ones)."""
    x = floating["inputs"]
    if x is None:
        x = np.random.default_rng(0).standard_normal((500, *project.input_shape))
    fixed = project.tail(emulate(project, project.head(x)))
    change = float_model.output_change(host.run(reference_model, x), fixed)
    return {**floating["how"], "formats": floating["formats"], "output_change": change}


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
    check: Callable[[Project], dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    tail: str = "auto",
    precision: str | None = None,
    calibration: np.ndarray | None = None,
    bits: int = 8,
) -> dict[str, Any]:
    """Convert, compile the C simulation, write the RTL (style `rtl`, or "none") and the manifest.

    `check`, when given, proves the finished project (e.g. `qfx.testbench.verify.check`) before it
    replaces anything; its summary is recorded as the manifest's "check"; if it raises, nothing is kept.
    `tail`: auto/host run float ops after the last exact tensor on the host (see `qfx.hls.host`), hw keeps
    them in the design (refused where they have no exact meaning); float preprocessing always runs there.
    A float model (no quantizer) takes `precision` (e.g. hls4ml's default "ap_fixed<16,6>") or
    `calibration` inputs for formats of `bits` (see `qfx.hls.float_model`).
    """
    say = progress or (lambda _: None)
    target = boards.get(board)
    hls_backend = _choice("backend", backend, BACKENDS)
    io_type = _choice("io", io, IO_TYPES)
    hls_strategy = _choice("strategy", strategy, STRATEGIES)
    _choice("rtl", rtl, RTL_STYLES)
    if reuse < 1:
        raise ValueError(f"reuse {reuse} must be at least 1")
    clock_ns = clock if clock is not None else target.clock_ns
    if clock_ns <= 0:
        raise ValueError(f"clock {clock_ns} ns must be positive")
    out = Path(output_dir)
    source = Path(onnx_path)
    proto = load(source)
    floating = _float_model(proto, source, precision, calibration, bits)
    if floating is not None:
        proto = floating["model"]
    parts, graph = host.prepared_split(proto, tail)
    graph.check_exact()
    if rtl != "none":
        for node in graph.nodes:
            if type(ops.get(node)).trace is ops.Op.trace:
                raise ValueError(f"node {node.name}: op type {node.op_type} has no RTL yet; convert with --rtl none")
    in_fmt = graph.input_format()
    with stage("preparation for hls4ml"):
        hls_model = for_hls4ml(graph)
    with replacing_dir(out, force, keep=(source,)) as project_dir:
        log = project_dir / "hls4ml_convert.log"
        say("converting with hls4ml and compiling the C simulation (g++)")
        # hls4ml narrates every layer on stdout; keep that in the project as a log instead.
        with stage("hls4ml conversion", log), open(log, "w") as f, contextlib.redirect_stdout(f):
            config = _hls4ml_config(hls_model, hls_model.graph.input[0].name, in_fmt, hls_backend, hls_strategy, reuse)
            hm = hls4ml.converters.convert_from_onnx_model(
                hls_model,
                output_dir=str(project_dir / PROJECT),
                project_name=PROJECT_NAME,
                backend=hls_backend,
                part=target.part,
                clock_period=clock_ns,
                io_type=io_type,
                hls_config=config,
            )
            layers = _check_types(hm)
        with stage("C simulation build (hls4ml compile, g++)", log), open(log, "a") as f, contextlib.redirect_stdout(f):
            hm.compile()
        graph.save(project_dir / MODEL)
        for part, name in ((parts.head, host.HEAD), (parts.tail, host.TAIL)):
            if part is not None:
                onnx.save(part, str(project_dir / name))
        out_var = hm.get_output_variables()[0]
        manifest: dict[str, Any] = {
            "board": target.name,
            "part": target.part,
            "family": target.family,
            "clock_ns": clock_ns,
            "backend": backend,
            "io": io,
            "strategy": strategy,
            "reuse": reuse,
            "source": {"path": str(source), "sha256": hashlib.sha256(source.read_bytes()).hexdigest()},
            "input": {"name": graph.input_name, "shape": graph.shape(graph.input_name), "format": str(in_fmt)},
            "output": {
                "name": out_var.name,
                "shape": [int(d) for d in out_var.shape],
                "type": str(out_var.type.precision),
            },
            "layers": layers,
            "host": {**parts.describe(), "tail_mode": tail},
            "project": PROJECT,
            "library": str(Path(hm._top_function_lib._name).resolve().relative_to(project_dir.resolve())),
            "built_in": str(project_dir.resolve()),  # where the C simulation reads its weights from
            "qfx_formats": json.loads(_metadata(graph.proto, "qfx_formats") or "{}"),
        }
        write_json(project_dir / MANIFEST, manifest)
        project = Project(project_dir)
        if rtl != "none":
            say(f"writing {rtl} RTL (da4ml)")
            with stage("RTL generation (da4ml)"):
                project.update("rtl", write_rtl(project, rtl))
        if floating is not None:
            say("measuring the fixed-point outputs against the float model")
            project.update("float_model", _output_change(project, load(source), floating))
        if check is not None:
            project.update("check", check(project))
    return Project(out).manifest


def _metadata(proto: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in proto.metadata_props if p.key == key), None)
