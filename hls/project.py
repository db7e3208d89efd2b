"""A converted folder as one object: its manifest (`qfx.json`), paths, formats, prepared graph, C
simulation and RTL description, read once and handed to every stage. Writes are staged and renamed."""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from qfx.fixed import FixedFormat
from qfx.hls import host
from qfx.hls.graph import QonnxGraph, load

MANIFEST = "qfx.json"
MODEL = "model.onnx"  # the prepared graph: what emulation, RTL and estimation read
PROJECT = "hls4ml_prj"
PROJECT_NAME = "qfx_model"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON file beside its target and rename it into place, so no reader sees half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private
    os.replace(tmp, path)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replacing_dir(final: Path, force: bool, keep: tuple[Path, ...] = ()) -> Iterator[Path]:
    """The folder to build a project in: `final` itself, since hls4ml's C simulation records the absolute
    path it was built in. An old non-empty `final` (only with `force`) is moved aside first and removed
    only once the new project is complete; on any failure the new one is deleted and the old one put back.

    `keep` are paths (the inputs) that replacing `final` must not delete.
    """
    final = Path(os.path.abspath(final))
    if Path.cwd().resolve().is_relative_to(final.resolve()):
        raise ValueError(f"{final} is the current folder or contains it; write the project elsewhere")
    if final.exists() and not final.is_dir():
        raise ValueError(f"{final} exists and is not a folder")
    old = None
    if final.exists() and any(final.iterdir()):
        if not force:
            raise ValueError(f"{final} exists and is not empty; pass --force to replace it")
        inside = [k for k in keep if Path(k).resolve().is_relative_to(final.resolve())]
        if inside:
            raise ValueError(f"{final} holds the input {inside[0]}; --force would delete it")
        old = final.parent / f".{final.name}.{os.getpid()}.old"
        final.rename(old)
    existed = final.is_dir()
    final.mkdir(parents=True, exist_ok=True)
    try:
        yield final
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        if old is not None:
            old.rename(final)
        elif existed:
            final.mkdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class CSim:
    """The compiled C simulation library of a converted project.

    hls4ml's link_existing_project cannot reload a project converted from ONNX (its config embeds the
    ModelWrapper), so this loads the bridge library hls4ml compiled and calls its `<project>_double`
    entry point directly, as hls4ml's own predict() does.
    """

    def __init__(self, library: Path, n_in: int, n_out: int) -> None:
        self._fn = getattr(ctypes.cdll.LoadLibrary(str(library.resolve())), f"{PROJECT_NAME}_double")
        self.n_in, self.n_out = n_in, n_out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x [N, n_in] float64, already holding exactly representable input values."""
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(len(x), self.n_in)
        y = np.zeros((len(x), self.n_out), dtype=np.float64)
        ptr = ctypes.POINTER(ctypes.c_double)
        for i in range(len(x)):
            self._fn(x[i].ctypes.data_as(ptr), y[i].ctypes.data_as(ptr))
        return y


class Project:
    """A folder written by `qfx convert`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise ValueError(f"{self.path}: no {MANIFEST}; is it a directory written by `qfx convert`?")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{manifest}: not valid JSON ({e})") from None

    @classmethod
    def open(cls, project: str | Path | Project) -> Project:
        return project if isinstance(project, Project) else cls(project)

    def __getitem__(self, key: str) -> Any:
        return self.manifest[key]

    @property
    def input_format(self) -> FixedFormat:
        return FixedFormat.parse(self.manifest["input"]["format"])

    @property
    def input_shape(self) -> list[int]:
        """One sample's shape (without the batch)."""
        return list(self.manifest["input"]["shape"][1:])

    @property
    def rtl(self) -> dict[str, Any] | None:
        return self.manifest.get("rtl")

    @cached_property
    def graph(self) -> QonnxGraph:
        """The prepared graph the project was built from."""
        return QonnxGraph(ModelWrapper(load(self.path / MODEL)))

    @cached_property
    def csim(self) -> CSim:
        lib = self.path / self.manifest["library"]
        if not lib.is_file():
            raise ValueError(
                f"{self.path}: the compiled C simulation {self.manifest['library']} is missing; convert again"
            )
        if self.manifest.get("built_in", str(self.path.resolve())) != str(self.path.resolve()):
            self._rebuild_csim()
        return CSim(lib, math.prod(self.input_shape), math.prod(self.manifest["output"]["shape"]))

    def _rebuild_csim(self) -> None:
        """A moved project: hls4ml's C simulation reads its weights from the absolute path it was built in,
        so rebuild it here with hls4ml's own (self-locating) build script."""
        done = subprocess.run(["bash", "build_lib.sh"], cwd=self.path / PROJECT, capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            raise ValueError(f"{self.path}: rebuilding the C simulation of the moved project failed: {last}")
        self.update("built_in", str(self.path.resolve()))

    def update(self, key: str, value: Any) -> None:
        """Set one manifest entry and write the manifest (staged)."""
        self.manifest[key] = value
        write_json(self.path / MANIFEST, self.manifest)

    def replace_rtl(self, rtl: dict[str, Any]) -> None:
        """Record newly written RTL; the recorded proof was of the old RTL, so it goes (`qfx verify` proves this)."""
        self.manifest.pop("check", None)
        self.update("rtl", rtl)

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        """Inputs as float64 [N, ...] of the model's input shape, or a ValueError saying what was expected."""
        x = np.asarray(x, dtype=np.float64)
        want = self.input_shape
        if x.ndim == len(want):
            x = x[None]
        if list(x.shape[1:]) != list(want):
            raise ValueError(f"inputs have shape {list(x.shape)}; the model takes [N, {', '.join(map(str, want))}]")
        if np.isnan(x).any():
            raise ValueError("inputs contain NaN, which has no fixed-point value")
        return x

    def _host(self, part: str) -> Path | None:
        described = self.manifest.get("host", {}).get(part)
        if described is None:
            return None
        path = self.path / described["file"]
        if not path.is_file():
            raise ValueError(f"{self.path}: the host {part} {described['file']} is missing; convert again")
        return path

    def head(self, x: np.ndarray) -> np.ndarray:
        """The model's inputs as the design takes them: the host's float preprocessing applied (float32, as
        the ONNX computes it), or x itself where the model has none."""
        path = self._host("head")
        return x if path is None else host.run(path, x).astype(np.float64)

    def tail(self, y: np.ndarray) -> np.ndarray:
        """The model's outputs from the design's: the host's float tail applied (Softmax, ArgMax...), or y."""
        path = self._host("tail")
        return y if path is None else host.run(path, y)

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """The first quantizer applied exactly: the bits the hardware's input port receives."""
        return self.input_format.quantize(torch.from_numpy(self.check_inputs(x))).numpy()
