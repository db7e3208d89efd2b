"""A converted folder as one object: its manifest (`qfx.json`), paths, formats, prepared graph, C
simulation and RTL description, read once and handed to every stage. Writes are staged and renamed."""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from qfx.fixed import FixedFormat
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
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_dir(final: Path, force: bool, keep: tuple[Path, ...] = ()) -> Iterator[Path]:
    """A fresh folder beside `final` to build in; on success it replaces `final` (only then is an old
    `final` removed, and only with `force`); on any failure it is deleted and `final` is untouched.

    `keep` are paths (the inputs) that replacing `final` must not delete.
    """
    final = Path(os.path.abspath(final))
    if Path.cwd().resolve().is_relative_to(final.resolve()):
        raise ValueError(f"{final} is the current folder or contains it; write the project elsewhere")
    if final.exists() and not final.is_dir():
        raise ValueError(f"{final} exists and is not a folder")
    if final.exists() and any(final.iterdir()):
        if not force:
            raise ValueError(f"{final} exists and is not empty; pass --force to replace it")
        inside = [k for k in keep if Path(k).resolve().is_relative_to(final.resolve())]
        if inside:
            raise ValueError(f"{final} holds the input {inside[0]}; --force would delete it")
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    stage.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the project gets the user's usual mode
    try:
        yield stage
        old = final.parent / f"{stage.name}.old"
        if final.exists():
            final.rename(old)
        try:
            stage.rename(final)
        except BaseException:
            if old.exists():
                old.rename(final)
            raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
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
        return CSim(lib, math.prod(self.input_shape), math.prod(self.manifest["output"]["shape"]))

    def update(self, key: str, value: Any) -> None:
        """Set one manifest entry and write the manifest (staged)."""
        self.manifest[key] = value
        write_json(self.path / MANIFEST, self.manifest)

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

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """The first quantizer applied exactly: the bits the hardware's input port receives."""
        return self.input_format.quantize(torch.from_numpy(self.check_inputs(x))).numpy()
