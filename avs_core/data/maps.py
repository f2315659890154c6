"""Map files of the pseudo-mask and segmentation stages, and the prepared frames read in chunks.

A map file is ``{split}.h5`` with ``ids`` [V] and ``[V, T, ...]`` datasets in the prepared split's
video order (one file per split, written chunk by chunk).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from avs_core.store import (
    COMPRESSION,
    StoreError,
    create_h5,
    open_h5,
    read_strings,
    require_finite,
    write_strings,
)

CHUNK_VIDEOS = 16


def split_ids(prepared: Path, split: str) -> list[str]:
    """The video ids of ``split`` in ``prepared`` (``paths.prepared``), in order."""
    with open_h5(Path(prepared) / f"{split}.h5") as f:
        return read_strings(f["ids"])


def frame_chunks(prepared: Path, split: str, chunk: int = CHUNK_VIDEOS) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, frames [n, T, 3, S, S] uint8)`` over the split, ``chunk`` videos at a time (bounded memory)."""
    with open_h5(Path(prepared) / f"{split}.h5") as f:
        frames = f["frames"]
        for start in range(0, frames.shape[0], chunk):
            yield start, frames[start:start + chunk]


def train_frames(prepared: Path, split: str = "train") -> np.ndarray:
    """All frames of a split flattened to ``[V*T, 3, S, S]`` uint8 (video-major)."""
    with open_h5(Path(prepared) / f"{split}.h5") as f:
        frames = f["frames"][()]
    return frames.reshape(-1, *frames.shape[2:])


class MapWriter:
    """Writes ``[V, T, ...]`` datasets chunk by chunk into one map file per split.

    Float maps must be finite: a NaN (a diverged net, a broken upstream map) stops the stage with
    the video ids instead of flowing silently into the pseudo masks and metrics.
    """

    def __init__(self, fh: h5py.File, ids: list[str], where: str):
        self.fh, self.ids, self.where = fh, ids, where
        self.num_videos = len(ids)
        self._next: dict[str, int] = {}  # per dataset: the first video not yet written by append

    def append(self, name: str, values: np.ndarray) -> None:
        """``add`` at the first video that ``append`` has not written yet (chunks in video order)."""
        start = self._next.get(name, 0)
        self.add(name, start, values)
        self._next[name] = start + len(values)

    def add(self, name: str, start: int, values: np.ndarray) -> None:
        require_finite(values, self.ids[start:start + len(values)], f"'{name}' of {self.where}",
                       "check the upstream maps with `avs inspect` and the training loss in reports/; "
                       "a lower learning rate usually fixes a diverged net")
        if name not in self.fh:
            shape = (self.num_videos, *values.shape[1:])
            self.fh.create_dataset(name, shape=shape, dtype=values.dtype, chunks=(1, *values.shape[1:]),
                                   **(COMPRESSION if values.dtype == np.uint8 else {}))
        self.fh[name][start:start + len(values)] = values


@contextlib.contextmanager
def map_file(path: Path, stage: str, split: str, params: dict, prepared: Path) -> Iterator[MapWriter]:
    """A map file for ``split`` whose ``ids`` are the prepared split's (``prepared`` = ``paths.prepared``)."""
    ids = split_ids(prepared, split)
    with create_h5(path, stage=stage, params=params, split=split) as fh:
        write_strings(fh, "ids", ids)
        yield MapWriter(fh, ids, f"{stage} output {path.name} ({split})")


def map_chunks(path: Path, key: str, chunk: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, maps [n, T, ...])`` of dataset ``key`` of a map file, ``chunk`` videos at a time
    (default ``CHUNK_VIDEOS``; bounded memory), each chunk checked as :func:`read_maps` checks it."""
    chunk = chunk or CHUNK_VIDEOS
    with open_h5(path) as f:
        num_videos = len(f["ids"])
    for start in range(0, num_videos, chunk):
        yield start, read_maps(path, key, start, start + chunk)


def read_maps(path: Path, key: str, start: int | None = None, stop: int | None = None,
              videos: np.ndarray | None = None) -> np.ndarray:
    """Dataset ``key`` of a map file for videos ``start:stop`` (or the sorted, unique indices
    ``videos``), checked: a missing dataset or a non-finite value is an error naming the file,
    the video and the stage to re-run."""
    rows = slice(start, stop) if videos is None else np.asarray(videos, dtype=np.int64)
    with open_h5(path) as f:
        if key not in f:
            raise StoreError(f"{path} has no dataset '{key}' (has {sorted(f)}); re-run the stage that writes it")
        ds = f[key]
        if videos is None:
            values = ds[rows]
        elif len(rows):  # one read per video: h5py's point selection (ds[[i, j, ...]]) was 25x slower per batch
            values = np.stack([ds[i] for i in rows])
        else:
            values = ds[0:0]
        # the ids are decoded only to name a bad video: decoding them for every training batch cost more than the read
        require_finite(values, lambda: list(np.asarray(read_strings(f["ids"]), dtype=object)[rows]),
                       f"'{key}' of {path}", "delete it and re-run the stage that writes it (`dvc repro -f`)")
    return values
