"""Tiny datasets written in the official AVSBench layouts, independently of the project's own
generator (paths spelled out as in the reference notes, §1), for reader tests."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

SIZE = 32


def frame(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


def mask(seed: int, size: int = SIZE) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    r = np.random.default_rng(seed)
    x, y = r.integers(0, size // 2, 2)
    m[y:y + size // 3, x:x + size // 3] = 255
    return m


def wav(path: Path, seconds: float = 5.0, rate: int = 16000, channels: int = 1, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * rate), channels)).astype(np.float32)
    sf.write(str(path), x, rate, subtype="PCM_16")


def png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


S4_VIDEOS = [("vidA", "dog", "train"), ("vidB", "cat", "train"), ("vidC", "dog", "val"), ("vidD", "cat", "test")]


def write_s4(root: Path) -> Path:
    """``root/Single-source`` with 4 videos (2 train, 1 val, 1 test)."""
    base = root / "Single-source"
    data = base / "s4_data"
    lines = ["name,start,category,split"]
    for i, (name, cat, split) in enumerate(S4_VIDEOS):
        lines.append(f"{name},0,{cat},{split}")
        for k in range(1, 6):
            png(data / "visual_frames" / split / cat / name / f"{name}_{k}.png", frame(i * 10 + k))
            if split != "train" or k == 1:
                png(data / "gt_masks" / split / cat / name / f"{name}_{k}.png", mask(i * 10 + k))
        wav(data / "audio_wav" / split / cat / f"{name}.wav", seed=i)
    (base / "s4_meta_data.csv").write_text("\n".join(lines) + "\n")
    return base


MS3_VIDEOS = [("m1", "train"), ("m2_3", "train"), ("m3", "val"), ("m4", "test")]


def write_ms3(root: Path) -> Path:
    base = root / "Multi-sources"
    data = base / "ms3_data"
    lines = ["video_id,split"]
    for i, (vid, split) in enumerate(MS3_VIDEOS):
        lines.append(f"{vid},{split}")
        for k in range(1, 6):
            png(data / "visual_frames" / vid / f"{vid}.mp4_{k}.png", frame(i * 10 + k))
            png(data / "gt_masks" / split / vid / f"{vid}_{k}.png", mask(i * 10 + k))
        wav(data / "audio_wav" / split / f"{vid}.wav", seed=i)
    (base / "ms3_meta_data.csv").write_text("\n".join(lines) + "\n")
    return base


AVSS_VIDEOS = [("s1", "v1s", "train"), ("s2", "v1s", "test"), ("m1", "v1m", "train"), ("yt_0_10000", "v2", "val")]


def write_avss(root: Path) -> Path:
    base = root / "AVSS"
    lines = ["vid,uid,s_min,s_sec,a_obj,split,label"]
    for i, (uid, label, split) in enumerate(AVSS_VIDEOS):
        lines.append(f"{uid},{uid},0,0,dog,{split},{label}")
        n = 10 if label == "v2" else 5
        n_masks = 1 if (label == "v1s" and split == "train") else n
        for k in range(n):
            png(base / label / uid / "frames" / f"{k}.jpg", frame(i * 10 + k))
            if k < n_masks:
                colour = np.zeros((SIZE, SIZE, 3), np.uint8)
                colour[mask(k) > 0] = (0, 0, 128)  # BGR of VOC index 1 = (128, 0, 0)
                png(base / label / uid / "labels_rgb" / f"{k}.png", colour)
        wav(base / label / uid / "audio.wav", seconds=10 if label == "v2" else 5, seed=i)
    (base / "metadata.csv").write_text("\n".join(lines) + "\n")
    (base / "label2idx.json").write_text(json.dumps({f"c{i}": i + 1 for i in range(71)}))
    return base
