"""Readers for the three official AVSBench on-disk layouts (reference notes §1).

Each reader checks what it can without decoding files (CSV columns, split names, duplicate ids,
presence of every frame, mask and WAV) and returns a :class:`DatasetIndex`: good records plus a
:class:`DataError` for every video that failed. Decoding-level checks live in
:mod:`avs_core.data.loading`.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from avs_core.data.records import SPLITS, DataError, DatasetIndex, VideoRecord

S4_DIR, MS3_DIR = "Single-source", "Multi-sources"
S4_FRAMES = 5


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError("-", path, "metadata CSV not found",
                        "point data.root at the folder that holds the AVSBench release")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError("-", path, f"CSV lacks column(s) {missing}; header is {reader.fieldnames}",
                            "use the official metadata file")
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _check_row(vid: str, split: str, seen: set[str], csv_path: Path) -> DataError | None:
    if not vid:
        return DataError("?", csv_path, "CSV row with an empty id")
    if vid in seen:
        return DataError(vid, csv_path, "duplicate id in the CSV", "each video may appear once")
    seen.add(vid)
    if split not in SPLITS:
        return DataError(vid, csv_path, f"unknown split '{split}'", f"expected one of {list(SPLITS)}")
    return None


def _missing(vid: str, paths: list[Path], what: str) -> DataError | None:
    for p in paths:
        if not p.is_file():
            return DataError(vid, p, f"{what} missing")
    return None


def read_s4(root: str | Path) -> DatasetIndex:
    """Index the S4 (single-source) layout.

    Args:
        root: the ``Single-source`` folder (holding ``s4_meta_data.csv`` and ``s4_data/``), or
            its parent ``avsbench_data``.
    """
    root = Path(root)
    if (root / S4_DIR).is_dir():
        root = root / S4_DIR
    csv_path = root / "s4_meta_data.csv"
    rows = _read_csv(csv_path, ("name", "category", "split"))
    data = root / "s4_data"
    records, problems, seen = [], [], set()
    for row in rows:
        vid, cat, split = row["name"], row["category"], row["split"]
        err = _check_row(vid, split, seen, csv_path)
        if err is None and not cat:
            err = DataError(vid, csv_path, "CSV row with an empty category")
        if err:
            problems.append(err)
            continue
        frame_dir = data / "visual_frames" / split / cat / vid
        if not frame_dir.is_dir():
            others = sorted(p.parent.name for p in (data / "visual_frames" / split).glob(f"*/{vid}"))
            hint = (f"found under category folder '{others[0]}' but the CSV says '{cat}'" if others
                    else "the CSV row has no files; remove the row or restore the video")
            problems.append(DataError(vid, frame_dir, "frame folder missing", hint))
            continue
        frames = [frame_dir / f"{vid}_{k}.png" for k in range(1, S4_FRAMES + 1)]
        n_masks = 1 if split == "train" else S4_FRAMES  # S4 train annotates frame 1 only
        mask_dir = data / "gt_masks" / split / cat / vid
        masks = [mask_dir / f"{vid}_{k}.png" for k in range(1, n_masks + 1)]
        audio = data / "audio_wav" / split / cat / f"{vid}.wav"
        err = _missing(vid, frames, "frame") or _missing(vid, masks, "mask") or _missing(vid, [audio], "audio WAV")
        if err:
            problems.append(err)
            continue
        records.append(VideoRecord(vid, split, cat, (cat,), tuple(frames),
                                   tuple(masks) + (None,) * (S4_FRAMES - n_masks), audio))
    return DatasetIndex(records, problems)


def read_ms3(root: str | Path) -> DatasetIndex:
    """Index the MS3 (multi-source) layout: frames have no split level and a ``.mp4_`` infix.

    Args:
        root: the ``Multi-sources`` folder (holding ``ms3_meta_data.csv`` and ``ms3_data/``), or
            its parent ``avsbench_data``.
    """
    root = Path(root)
    if (root / MS3_DIR).is_dir():
        root = root / MS3_DIR
    csv_path = root / "ms3_meta_data.csv"
    rows = _read_csv(csv_path, ("video_id", "split"))
    data = root / "ms3_data"
    records, problems, seen = [], [], set()
    for row in rows:
        vid, split = row["video_id"], row["split"]
        err = _check_row(vid, split, seen, csv_path)
        if err:
            problems.append(err)
            continue
        frame_dir = data / "visual_frames" / vid
        if not frame_dir.is_dir():
            problems.append(DataError(vid, frame_dir, "frame folder missing",
                                      "the CSV row has no files; remove the row or restore the video"))
            continue
        frames = [frame_dir / f"{vid}.mp4_{k}.png" for k in range(1, S4_FRAMES + 1)]
        masks = [data / "gt_masks" / split / vid / f"{vid}_{k}.png" for k in range(1, S4_FRAMES + 1)]
        audio = data / "audio_wav" / split / f"{vid}.wav"
        err = _missing(vid, frames, "frame") or _missing(vid, masks, "mask") or _missing(vid, [audio], "audio WAV")
        if err:
            problems.append(err)
            continue
        records.append(VideoRecord(vid, split, "", (), tuple(frames), tuple(masks), audio))
    return DatasetIndex(records, problems)


AVSS_NUM_CLASSES = 71
AVSS_PADDED_FRAMES = 10


def avss_palette(num_classes: int = AVSS_NUM_CLASSES) -> list[tuple[int, int, int]]:
    """The PASCAL-VOC bit palette AVSS colour masks use: index 0 = (0,0,0), 1 = (128,0,0), ..."""
    colours = []
    for label in range(num_classes):
        r = g = b = 0
        lab = label
        for i in range(8):
            r |= ((lab >> 0) & 1) << (7 - i)
            g |= ((lab >> 1) & 1) << (7 - i)
            b |= ((lab >> 2) & 1) << (7 - i)
            lab >>= 3
        colours.append((r, g, b))
    return colours


def avss_frame_flags(label: str, split: str) -> tuple[list[int], list[int]]:
    """``(vid_temporal_mask_flag, gt_temporal_mask_flag)`` for one AVSS video, padded to 10."""
    if label == "v2":
        return [1] * 10, [1] * 10
    video = [1] * 5 + [0] * 5
    if label == "v1s" and split == "train":
        return video, [1] + [0] * 9
    return video, [1] * 5 + [0] * 5


def read_avss(root: str | Path) -> DatasetIndex:
    """Index the AVSS (AVSBench-semantic) layout: ``{label}/{uid}/frames/{i}.jpg``.

    ``label2idx.json`` is checked for 71 entries when present. Frames per video: 5 for v1s / v1m,
    10 for v2; S4-derived (v1s) train videos carry only ``labels_rgb/0.png``.
    """
    root = Path(root)
    csv_path = root / "metadata.csv"
    rows = _read_csv(csv_path, ("uid", "label", "split"))
    label_file = root / "label2idx.json"
    if label_file.is_file():
        n = len(json.loads(label_file.read_text()))
        if n != AVSS_NUM_CLASSES:
            raise DataError("-", label_file, f"{n} classes, expected {AVSS_NUM_CLASSES}")
    records, problems, seen = [], [], set()
    for row in rows:
        uid, subset, split = row["uid"], row["label"], row["split"]
        err = _check_row(uid, split, seen, csv_path)
        if err is None and subset not in ("v1s", "v1m", "v2"):
            err = DataError(uid, csv_path, f"unknown label subset '{subset}'", "expected v1s, v1m or v2")
        if err:
            problems.append(err)
            continue
        vdir = root / subset / uid
        n_frames = 10 if subset == "v2" else 5
        frames = [vdir / "frames" / f"{i}.jpg" for i in range(n_frames)]
        _, gt_flags = avss_frame_flags(subset, split)
        masks = [vdir / "labels_rgb" / f"{i}.png" if gt_flags[i] else None for i in range(n_frames)]
        audio = vdir / "audio.wav"
        if not vdir.is_dir():
            problems.append(DataError(uid, vdir, "video folder missing",
                                      "the CSV row has no files; remove the row or restore the video"))
            continue
        err = (_missing(uid, frames, "frame") or _missing(uid, [m for m in masks if m], "label map")
               or _missing(uid, [audio], "audio WAV"))
        if err:
            problems.append(err)
            continue
        objects = tuple(o for o in row.get("a_obj", "").replace(";", ",").split(",") if o.strip())
        records.append(VideoRecord(uid, split, subset, tuple(o.strip() for o in objects),
                                   tuple(frames), tuple(masks), audio))
    return DatasetIndex(records, problems)


def read_layout(subset: str, root: str | Path) -> DatasetIndex:
    """Dispatch on ``data.subset``."""
    readers = {"s4": read_s4, "ms3": read_ms3, "avss": read_avss}
    if subset not in readers:
        raise ValueError(f"unknown subset {subset!r}")
    return readers[subset](root)
