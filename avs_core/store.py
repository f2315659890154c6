"""HDF5 outputs: atomic, deterministic, self-describing.

* Atomic: every output is written to a hidden temp file beside its target and ``os.replace``d
  into place only after the file is closed, so a crash or Ctrl-C leaves no half-written HDF5.
* Deterministic: h5py >= 3.15 writes no timestamps; datasets are written in a fixed order,
  attributes hold no wall-clock time or hostname, and compressed datasets use ``COMPRESSION``
  (never lzf), so the same content gives the same bytes and DVC can skip downstream stages.
* Self-describing: each file carries the producing stage, its params (JSON) and the code version.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np

from avs_core.provenance import code_version


# gzip, not lzf: liblzf leaves its hash table uninitialised (INIT_HTAB 0), so one chunk can compress
# to different (equally valid) bytes from one run to the next, and DVC then re-runs every stage below.
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1}


class StoreError(RuntimeError):
    """An HDF5 input is missing, unreadable or not what the stage expects."""


def require_finite(values: np.ndarray, ids: list[str] | Callable[[], list[str]], what: str, hint: str) -> None:
    """Refuse to store NaN or inf: name the videos whose rows (axis 0 of ``values``) hold them.

    Args:
        values: ``[n, ...]`` array about to be written, row i belonging to video ``ids[i]``.
        ids: the rows' video ids, or a function that returns them: called only to name a bad video,
            for callers whose ids cost more to read than the check (``read_maps`` per training batch).
        what: the dataset and file, e.g. ``"'pamr' of data/pseudo/pamr/train.h5"``.
        hint: what the user should do (which upstream output or param to look at).
    """
    if not np.issubdtype(values.dtype, np.floating) or values.size == 0:
        return
    bad_rows = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad_rows.any():
        names = ids() if callable(ids) else ids
        bad = [names[i] for i in np.flatnonzero(bad_rows)]
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise StoreError(f"NaN or inf in {what} for video(s) {shown}; nothing was written ({hint})")


_interrupted = threading.Event()


def record_interrupt(signum: int, frame: object) -> None:
    """Signal handler for SIGINT / SIGTERM: remember the interrupt, then unwind like Ctrl-C.

    Remembering is what makes the unwinding reliable. A KeyboardInterrupt raised while Python runs
    a finaliser or a weakref callback (torch frees tensors through them) is printed as "Exception
    ignored in ..." and swallowed; the stage would then run on and rename its outputs into place
    as if never interrupted. :func:`atomic_path` checks the record and refuses to.
    """
    _interrupted.set()
    raise KeyboardInterrupt


def was_interrupted() -> bool:
    """True once :func:`record_interrupt` has run in this process (until :func:`clear_interrupt`)."""
    return _interrupted.is_set()


def clear_interrupt() -> None:
    _interrupted.clear()


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _remove_stale(path: Path) -> None:
    """Delete temp files a killed (SIGKILL) earlier run left beside ``path``."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any exception (including KeyboardInterrupt) the temp file is removed and the
    exception propagates; ``path`` itself is never touched. Nor is it after a recorded interrupt
    (:func:`record_interrupt`) whose KeyboardInterrupt was swallowed on the way.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create output directory {path.parent}: {exc.strerror}") from None
    _remove_stale(path)
    tmp = _tmp_path(path)
    try:
        yield tmp
        _refuse_if_interrupted(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _refuse_if_interrupted(path: Path) -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt(f"interrupted; {path} was not written")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside ``path``; it replaces ``path`` whole if the block succeeds.

    For stages whose output is a directory of several files: either all of them appear, or
    none does.
    """
    path = Path(path)
    with atomic_path(path) as tmp:  # it removed stale temps, and removes this one on any exception
        tmp.mkdir()
        yield tmp
        # checked here too: the old output is removed below, before atomic_path's own check
        _refuse_if_interrupted(path)
        if path.exists():
            shutil.rmtree(path)


@contextlib.contextmanager
def create_h5(path: str | Path, *, stage: str, params: dict[str, Any] | None = None,
              **attrs: Any) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing, atomically, with the standard attributes set.

    Example::

        with create_h5("data/x.h5", stage="prepare", params=p) as f:
            f.create_dataset("ids", data=ids)
    """
    with atomic_path(path) as tmp:
        try:
            fh = h5py.File(tmp, "w", track_order=False)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from None
        with fh:
            fh.attrs["stage"] = stage
            fh.attrs["code_version"] = code_version(stage=stage)
            fh.attrs["params_json"] = json.dumps(params or {}, sort_keys=True)
            for key in sorted(attrs):
                fh.attrs[key] = _attr_value(attrs[key])
            yield fh


def _attr_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return np.array(value, dtype=h5py.string_dtype())
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def write_strings(fh: h5py.File, name: str, values: list[str]) -> None:
    """Store a list of strings as a UTF-8 variable-length string dataset."""
    fh.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())


def read_strings(ds: h5py.Dataset) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]


def open_h5(path: str | Path) -> h5py.File:
    """Open an upstream output read-only, with an error that says which stage to run."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} does not exist; run the stage that writes it (`dvc repro`)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise StoreError(f"{path} is not a readable HDF5 file ({exc}); delete it and re-run "
                         "`dvc repro`") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a small text file (JSON report, HTML) atomically."""
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
