"""What the HDF5 filter costs: the prepared train split's frames of the project in the current
directory (run ``dvc repro prepare`` first), written as ``prepare`` writes them (one chunk per
video) with each filter, then read whole, as ``load_split`` reads them.

Rows: no filter, lzf (the project's filter until session 32) and ``store.COMPRESSION`` (gzip 1).
Each file is written ``REPEATS`` times, with other arrays compressed between the writes; the
``distinct files`` column counts the different md5s among them (1: byte-identical every time).
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from avs_core.config import load_params
from avs_core.store import COMPRESSION

FILTERS = {"none": {}, "lzf": {"compression": "lzf"}, "gzip 1 (store.COMPRESSION)": COMPRESSION}
REPEATS = 3


def _write(path: Path, frames: np.ndarray, kw: dict) -> float:
    start = time.perf_counter()
    with h5py.File(path, "w") as fh:
        fh.create_dataset("frames", data=frames, chunks=(1, *frames.shape[1:]), **kw)
    return time.perf_counter() - start


def _read(path: Path) -> float:
    start = time.perf_counter()
    with h5py.File(path) as fh:
        fh["frames"][()]
    return time.perf_counter() - start


def run(params_path: str = "params.yaml") -> dict:
    """``{"videos", "raw_mb", filter: {"write_s", "read_s", "mb", "distinct"}}`` (best of ``REPEATS``)."""
    prepared = load_params(params_path).paths["prepared"] / "train.h5"
    with h5py.File(prepared) as fh:
        frames = fh["frames"][()]  # [V, T, 3, S, S] uint8
    other = np.roll(frames, 1, axis=-1)
    out = {"videos": len(frames), "raw_mb": frames.nbytes / 1e6}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in FILTERS.items():
            writes, reads, digests = [], [], set()
            for i in range(REPEATS):
                path = Path(tmp) / f"{i}.h5"
                if i:  # other data through the filter first: liblzf's hash table keeps what it last saw
                    _write(Path(tmp) / "other.h5", other, kw)
                writes.append(_write(path, frames, kw))
                reads.append(_read(path))
                digests.add(hashlib.md5(path.read_bytes()).hexdigest())
            out[name] = {"write_s": min(writes), "read_s": min(reads), "mb": path.stat().st_size / 1e6,
                         "distinct": len(digests)}
    return out


def table(result: dict) -> list[str]:
    rows = [f"Train frames: {result['videos']} videos, {result['raw_mb']:.1f} MB raw.\n",
            "| filter | write | read whole | file | distinct files of 3 writes |", "|---|---|---|---|---|"]
    for name in FILTERS:
        r = result[name]
        rows.append(f"| {name} | {r['write_s']:.2f} s | {r['read_s']:.2f} s | {r['mb']:.1f} MB | {r['distinct']} |")
    return rows
