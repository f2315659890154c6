"""Pack a validated AVSBench-layout dataset into one HDF5 file per split.

File ``{split}.h5`` (V videos, T = 5 frames, S = ``data.image_size``, H0 x W0 = native frame size):

==============  =====================  ==========================================================
dataset         shape / dtype          meaning
==============  =====================  ==========================================================
``ids``         [V] str                video ids, in CSV order
``categories``  [V] str                S4 category ("" for MS3)
``labels``      [V] int16              index into attr ``category_names`` (-1 when none)
``frames``      [V, T, 3, S, S] uint8  RGB frames resized to S x S (bilinear)
``masks``       [V, T, H0, W0] uint8   ground truth in {0, 1} at native size; 0 where not annotated
``annotated``   [V, T] bool            which frames have ground truth
``audio``       [V, L] float32         mono waveform at ``data.sample_rate``, L = 5 s
==============  =====================  ==========================================================

Masks stay at native size because the AVSBench metrics are computed there (224 x 224).
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from avs_core.config import DataParams
from avs_core.data.avsbench import read_layout
from avs_core.data.loading import load_video
from avs_core.data.records import SPLITS, DataError, DatasetIndex, VideoRecord
from avs_core.runtime import progress
from avs_core.store import COMPRESSION, create_h5, write_strings

log = logging.getLogger(__name__)

CLIP_SECONDS = 5.0


def _check_problems(problems: list[DataError], on_error: str) -> None:
    if problems and on_error == "fail":
        shown = "\n  ".join(str(p) for p in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(problems[0].video_id, problems[0].path,
                        f"{len(problems)} invalid item(s):\n  {shown}{more}\n",
                        "fix them, or set data.on_error=skip to leave them out (they are listed in the report)")
    for p in problems:
        log.warning("skipped: %s", p)


def _create(fh: h5py.File, name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
    return fh.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                             chunks=(1, *shape), **COMPRESSION)


def _append(ds: h5py.Dataset, value: np.ndarray) -> None:
    ds.resize(ds.shape[0] + 1, axis=0)
    ds[-1] = value


def write_split(path: Path, split: str, records: list[VideoRecord], params: DataParams,
                category_names: list[str]) -> tuple[list[str], list[DataError]]:
    """Decode, validate and stream one split into ``path``. Returns (ids written, problems)."""
    ids, cats, problems = [], [], []
    datasets: dict[str, h5py.Dataset] = {}
    with create_h5(path, stage="prepare", params=asdict(params), split=split, subset=params.subset,
                   source=params.source, image_size=params.image_size, sample_rate=params.sample_rate,
                   clip_seconds=CLIP_SECONDS, category_names=category_names or [""]) as fh:
        for rec in progress(records, desc=f"prepare {split}"):
            try:
                v = load_video(rec, params.image_size, params.sample_rate, CLIP_SECONDS)
            except DataError as err:
                problems.append(err)
                _check_problems([err], params.on_error)
                continue
            if not datasets:
                datasets = {
                    "frames": _create(fh, "frames", v.frames.shape, np.uint8),
                    "masks": _create(fh, "masks", v.masks.shape, np.uint8),
                    "annotated": _create(fh, "annotated", v.annotated.shape, bool),
                    "audio": _create(fh, "audio", v.audio.shape, np.float32),
                }
            elif v.masks.shape != datasets["masks"].shape[1:]:
                err = DataError(rec.video_id, rec.frame_paths[0],
                                f"native frame size {v.masks.shape[1:]} differs from the split's "
                                f"{datasets['masks'].shape[2:]}", "resize the dataset's frames and masks to one size")
                problems.append(err)
                _check_problems([err], params.on_error)
                continue
            for name in ("frames", "masks", "annotated", "audio"):
                _append(datasets[name], getattr(v, name))
            ids.append(rec.video_id)
            cats.append(rec.category)
        if not ids:
            raise DataError("-", path, f"split '{split}' has no valid video", "check the dataset and the report")
        write_strings(fh, "ids", ids)
        write_strings(fh, "categories", cats)
        lookup = {c: i for i, c in enumerate(category_names)}
        fh.create_dataset("labels", data=np.array([lookup.get(c, -1) for c in cats], np.int16))
        fh.attrs["num_videos"] = len(ids)
        fh.attrs["mask_size"] = np.array(datasets["masks"].shape[2:], np.int64)
    return ids, problems


def dataset_root(params: DataParams) -> Path:
    return Path(params.root)


def prepare(params: DataParams, out_dir: str | Path) -> dict:
    """Index, validate and pack every split. Returns the report (counts and skipped items)."""
    index: DatasetIndex = read_layout(params.subset, dataset_root(params))
    _check_problems(index.problems, params.on_error)
    category_names = sorted({r.category for r in index.records if r.category})
    out_dir = Path(out_dir)
    report = {"subset": params.subset, "source": params.source, "root": str(params.root),
              "splits": {}, "skipped": [p.as_dict() for p in index.problems]}
    for split in SPLITS:
        records = index.split(split)
        if not records:
            raise DataError("-", dataset_root(params), f"no video in split '{split}'",
                            "the metadata CSV must list train, val and test videos")
        ids, problems = write_split(out_dir / f"{split}.h5", split, records, params, category_names)
        report["splits"][split] = {"videos": len(ids), "skipped": len(problems)}
        report["skipped"] += [p.as_dict() for p in problems]
        log.info("%s: %d videos written, %d skipped", split, len(ids), len(problems))
    return report
