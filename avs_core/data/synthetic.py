"""Embedded synthetic dataset, written in the exact AVSBench S4 / MS3 on-disk layouts.

What it is: videos of 5 frames (PNG, ``frame_size`` squared) and 5 s of 16 kHz mono audio. Each
category has a recognisable but varied look (shape and hue; random size, texture, colour jitter,
rotation, motion between frames, occlusion) and a recognisable but varied sound (timbre, pitch,
rhythm; background noise). Most frames also show *silent* distractor objects of other
categories, so the audio is needed to know which object to segment. Ground-truth masks are the
exact visible pixels of the sounding object(s).

What it is not: AVSBench. It exists to run, test and regression-track the pipeline on a machine
without the real data; numbers measured on it are not AVSBench numbers.

S4 variant: one sounding object per video, CSV ``name,start,category,split``, train videos carry
the frame-1 mask only. MS3 variant: 2-3 sources per video that switch on and off per 1-second
clip (frame k shows the objects sounding during second k-1), masks for all frames.
"""
from __future__ import annotations

import csv
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from avs_core.config import SyntheticParams
from avs_core.data.avsbench import MS3_DIR, S4_DIR
from avs_core.data.records import SPLITS

SAMPLE_RATE = 16000
FRAMES = 5
# frame k (1-based) is taken ~0.94 s into second k-1, as in the AVSBench preprocessing
FRAME_TIMES = tuple(k - 1 + 0.94 for k in range(1, FRAMES + 1))


@dataclass(frozen=True)
class Category:
    name: str
    shape: str
    rgb: tuple[int, int, int]


CATEGORIES = (
    Category("bell", "circle", (235, 195, 40)),
    Category("drum", "square", (205, 45, 40)),
    Category("bird", "triangle", (50, 110, 225)),
    Category("engine", "bar", (125, 130, 135)),
    Category("siren", "star", (215, 60, 200)),
    Category("guitar", "ellipse", (60, 175, 80)),
)


# ---------------------------------------------------------------------------------------------
# Sounds: one generator per category, each with random pitch / rhythm / timbre


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _events(rng, seconds, low, high):
    """Onset times with random gaps in [low, high)."""
    t, out = rng.uniform(0, low), []
    while t < seconds:
        out.append(t)
        t += rng.uniform(low, high)
    return out


def _place(out: np.ndarray, onset: float, grain: np.ndarray) -> None:
    i = int(onset * SAMPLE_RATE)
    n = min(len(grain), len(out) - i)
    if n > 0:
        out[i:i + n] += grain[:n]


def _sound(name: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, np.float64)
    if name == "bell":
        f0 = rng.uniform(600, 1000)
        tt = _t(int(1.2 * SAMPLE_RATE))
        grain = sum(a * np.sin(2 * np.pi * f0 * p * tt) for p, a in ((1, 1), (2.0, .5), (2.76, .4), (5.4, .2)))
        grain *= np.exp(-tt * rng.uniform(3, 6))
        for on in _events(rng, seconds, 0.4, 0.9):
            _place(out, on, grain)
    elif name == "drum":
        tt = _t(int(0.25 * SAMPLE_RATE))
        f = rng.uniform(70, 120)
        phase = 2 * np.pi * np.cumsum(f * (1 + 1.5 * np.exp(-tt * 30))) / SAMPLE_RATE
        body = np.sin(phase) * np.exp(-tt * 14)
        for on in _events(rng, seconds, 0.18, 0.35):
            snare = rng.standard_normal(len(tt)) * np.exp(-tt * 35) * 0.4
            _place(out, on, body + snare)
    elif name == "bird":
        for on in _events(rng, seconds, 0.45, 1.0):
            for j in range(rng.integers(2, 5)):
                dur = rng.uniform(0.06, 0.12)
                tt = _t(int(dur * SAMPLE_RATE))
                f1, f2 = rng.uniform(2000, 2600), rng.uniform(3000, 4200)
                freq = f1 + (f2 - f1) * tt / dur
                grain = np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * np.hanning(len(tt))
                _place(out, on + j * (dur + 0.03), grain)
    elif name == "engine":
        tt = _t(n)
        f0 = rng.uniform(55, 95)
        out += sum(np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 6.28)) / h for h in range(1, 9))
        out *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(8, 15) * tt)
    elif name == "siren":
        tt = _t(n)
        rate, centre, depth = rng.uniform(0.4, 1.2), rng.uniform(550, 750), rng.uniform(150, 300)
        freq = centre + depth * np.sin(2 * np.pi * rate * tt)
        phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
        out += np.sin(phase) + 0.3 * np.sin(2 * phase)
    elif name == "guitar":
        f0 = rng.uniform(150, 330)
        tt = _t(int(1.0 * SAMPLE_RATE))
        grain = sum(np.sin(2 * np.pi * f0 * k * tt) / k * np.exp(-tt * (2 + 1.5 * k)) for k in range(1, 7))
        for on in _events(rng, seconds, 0.5, 1.0):
            _place(out, on, grain)
    else:
        raise ValueError(name)
    return out / (np.abs(out).max() + 1e-9)


# ---------------------------------------------------------------------------------------------
# Pictures


def _shape_mask(shape: str, size: int, centre, radius: float, angle: float) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cx, cy = centre
    if shape == "circle":
        cv2.circle(m, (int(round(cx)), int(round(cy))), int(round(radius)), 1, -1)
        return m
    if shape == "ellipse":
        cv2.ellipse(m, (int(round(cx)), int(round(cy))), (int(radius * 0.55), int(radius)),
                    np.degrees(angle) * 0.3, 0, 360, 1, -1)
        return m
    if shape == "square":
        pts = [(radius * 0.8, radius * 0.8), (-radius * 0.8, radius * 0.8),
               (-radius * 0.8, -radius * 0.8), (radius * 0.8, -radius * 0.8)]
    elif shape == "bar":
        pts = [(radius * 1.1, radius * 0.45), (-radius * 1.1, radius * 0.45),
               (-radius * 1.1, -radius * 0.45), (radius * 1.1, -radius * 0.45)]
        angle *= 0.2
    elif shape == "triangle":
        pts = [(radius * np.cos(a), radius * np.sin(a)) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
    elif shape == "star":
        pts = [((radius if i % 2 == 0 else radius * 0.45) * np.cos(a), (radius if i % 2 == 0 else radius * 0.45) * np.sin(a))
               for i, a in enumerate(np.arange(10) * np.pi / 5)]
    else:
        raise ValueError(shape)
    c, s = np.cos(angle), np.sin(angle)
    poly = np.array([(cx + c * x - s * y, cy + s * x + c * y) for x, y in pts], np.float64)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
    return m


def _texture(rng, size: int, rgb) -> np.ndarray:
    base = np.clip(np.array(rgb, np.float64) + rng.uniform(-25, 25, 3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size]
    kind = rng.integers(0, 4)
    shade = np.ones((size, size))
    if kind == 1:  # stripes
        period, theta = rng.uniform(6, 16), rng.uniform(0, np.pi)
        shade = 0.75 + 0.25 * (np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period) > 0)
    elif kind == 2:  # checker
        cell = int(rng.integers(5, 12))
        shade = 0.78 + 0.22 * (((xx // cell) + (yy // cell)) % 2)
    elif kind == 3:  # speckle
        shade = 1 + rng.normal(0, 0.08, (size, size))
    return np.clip(base[None, None] * shade[..., None], 0, 255)


def _background(rng, size: int) -> np.ndarray:
    c1, c2 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    grey = lambda c: 0.6 * c + 0.4 * c.mean()  # muted, so objects stand out by hue
    c1, c2 = grey(c1), grey(c2)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    w = (np.cos(theta) * xx + np.sin(theta) * yy)
    w = (w - w.min()) / (np.ptp(w) + 1e-9)
    img = c1 * (1 - w[..., None]) + c2 * w[..., None]
    for _ in range(rng.integers(8, 20)):  # clutter
        col = grey(rng.uniform(30, 220, 3))
        x, y = rng.integers(0, size, 2)
        if rng.random() < 0.5:
            w_, h_ = rng.integers(4, size // 6, 2)
            cv2.rectangle(img, (int(x), int(y)), (int(x + w_), int(y + h_)), col.tolist(), -1)
        else:
            x2, y2 = rng.integers(0, size, 2)
            cv2.line(img, (int(x), int(y)), (int(x2), int(y2)), col.tolist(), int(rng.integers(1, 4)))
    return img


@dataclass
class _Object:
    category: Category
    texture: np.ndarray
    centre: np.ndarray
    velocity: np.ndarray
    radius: float
    angle: float
    spin: float


def _new_object(rng, cat: Category, size: int, others: list[_Object] = ()) -> _Object:
    """A new object placed so that it does not cover the ones already placed (up to 50 tries)."""
    radius = rng.uniform(0.12, 0.22) * size
    margin = radius * 1.15
    for _ in range(50):
        centre = rng.uniform(margin, size - margin, 2)
        if all(np.linalg.norm(centre - o.centre) > 1.1 * (radius + o.radius) for o in others):
            break
    return _Object(cat, _texture(rng, size, cat.rgb), centre, rng.normal(0, 0.012 * size, 2), radius,
                   rng.uniform(0, 2 * np.pi), rng.normal(0, 0.15))


def _render(rng, objects: list[_Object], p: SyntheticParams, size: int):
    """Draw the 5 frames. Returns frames ``[5, S, S, 3]`` uint8 and visible masks ``[5, n_obj, S, S]``."""
    background = _background(rng, size)
    frames, visible = [], []
    order = rng.permutation(len(objects))
    occlude = rng.random() < p.occlusion_prob
    for k in range(FRAMES):
        img = background.copy()
        owner = np.full((size, size), -1, np.int64)
        for i in order:
            o = objects[i]
            centre = np.clip(o.centre + o.velocity * k + rng.normal(0, 0.005 * size, 2), o.radius, size - o.radius)
            m = _shape_mask(o.category.shape, size, centre, o.radius * rng.uniform(0.93, 1.07),
                            o.angle + o.spin * k).astype(bool)
            img[m] = o.texture[m]
            owner[m] = i
        if occlude and k >= 1:  # a clutter bar in front of the scene
            col = (0.6 * rng.uniform(30, 200, 3) + 0.4 * 120).tolist()
            x = int(rng.integers(0, size))
            bar = np.zeros((size, size), np.uint8)
            cv2.rectangle(bar, (x, 0), (x + int(rng.integers(6, size // 8)), size), 1, -1)
            img[bar.astype(bool)] = col
            owner[bar.astype(bool)] = -1
        img = img + rng.normal(0, 255 * p.noise_level * 0.5, img.shape)
        frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
        visible.append(np.stack([owner == i for i in range(len(objects))]).astype(np.uint8))
    return np.stack(frames), np.stack(visible)


def _mix(rng, sources: list[np.ndarray], p: SyntheticParams) -> np.ndarray:
    n = p.seconds * SAMPLE_RATE
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")  # slightly coloured
    audio = sum(sources) if sources else np.zeros(n)
    audio = audio + noise * p.noise_level * (np.abs(audio).max() + 0.1)
    return (audio / (np.abs(audio).max() + 1e-9) * rng.uniform(0.5, 0.9)).astype(np.float32)


def _video_id(rng) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rng.choice(list(alphabet), 11))


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")


def _write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16")


def _split_sizes(p: SyntheticParams) -> dict[str, int]:
    return {"train": p.videos_train, "val": p.videos_val, "test": p.videos_test}


def _distractors(rng, exclude: set[str], p: SyntheticParams, size: int, placed: list[_Object]) -> list[_Object]:
    """Silent objects of other categories, placed clear of the ``placed`` ones."""
    if rng.random() >= p.distractor_prob or p.max_distractors == 0:
        return []
    pool = [c for c in CATEGORIES if c.name not in exclude]
    n = int(rng.integers(1, p.max_distractors + 1))
    out = list(placed)
    for i in rng.choice(len(pool), min(n, len(pool)), replace=False):
        out.append(_new_object(rng, pool[i], size, out))
    return out[len(placed):]


def generate_s4(out_dir: str | Path, p: SyntheticParams) -> Path:
    """Write a synthetic dataset in the S4 layout under ``out_dir/Single-source``. Returns that folder."""
    root = Path(out_dir) / S4_DIR
    data = root / "s4_data"
    size = p.frame_size
    rows, used = [], set()
    for split_index, split in enumerate(SPLITS):
        n = _split_sizes(p)[split]
        cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
        for i, cat in enumerate(cats):
            rng = np.random.default_rng([p.seed, split_index, i])
            vid = _video_id(rng)
            while vid in used:
                vid = _video_id(rng)
            used.add(vid)
            sounding = [_new_object(rng, cat, size)]
            objects = sounding + _distractors(rng, {cat.name}, p, size, sounding)
            frames, visible = _render(rng, objects, p, size)
            audio = _mix(rng, [_sound(cat.name, rng, p.seconds)], p)
            n_masks = 1 if split == "train" else FRAMES
            for k in range(FRAMES):
                _write_png(data / "visual_frames" / split / cat.name / vid / f"{vid}_{k + 1}.png", frames[k])
                if k < n_masks:
                    _write_png(data / "gt_masks" / split / cat.name / vid / f"{vid}_{k + 1}.png",
                               visible[k, 0] * 255)
            _write_wav(data / "audio_wav" / split / cat.name / f"{vid}.wav", audio)
            rows.append((vid, 0, cat.name, split))
    _write_csv(root / "s4_meta_data.csv", ("name", "start", "category", "split"), rows)
    return root


def generate_ms3(out_dir: str | Path, p: SyntheticParams) -> Path:
    """Write a synthetic dataset in the MS3 layout under ``out_dir/Multi-sources``. Returns that folder."""
    root = Path(out_dir) / MS3_DIR
    data = root / "ms3_data"
    size = p.frame_size
    rows, used = [], set()
    for split_index, split in enumerate(SPLITS):
        for i in range(_split_sizes(p)[split]):
            rng = np.random.default_rng([p.seed, 100 + split_index, i])
            vid = _video_id(rng) + (f"_{int(rng.integers(1, 40))}" if rng.random() < 0.3 else "")
            while vid in used:
                vid = _video_id(rng)
            used.add(vid)
            n_src = int(rng.integers(2, 4))
            cats = [CATEGORIES[j] for j in rng.choice(len(CATEGORIES), n_src, replace=False)]
            sources: list[_Object] = []
            for c in cats:
                sources.append(_new_object(rng, c, size, sources))
            objects = sources + _distractors(rng, {c.name for c in cats}, p, size, sources)[:1]
            # which source sounds in which second; most seconds have at least one
            active = rng.random((FRAMES, n_src)) < 0.6
            for k in range(FRAMES):
                if not active[k].any() and rng.random() < 0.8:
                    active[k, rng.integers(0, n_src)] = True
            frames, visible = _render(rng, objects, p, size)
            tracks = []
            for j, c in enumerate(cats):
                gate = np.repeat(active[:, j].astype(np.float64), SAMPLE_RATE)
                gate = np.convolve(gate, np.ones(320) / 320, mode="same")  # 20 ms fades
                tracks.append(_sound(c.name, rng, p.seconds) * gate)
            audio = _mix(rng, tracks, p)
            for k in range(FRAMES):
                _write_png(data / "visual_frames" / vid / f"{vid}.mp4_{k + 1}.png", frames[k])
                gt = (visible[k, :n_src] * active[k, :, None, None]).max(axis=0)
                _write_png(data / "gt_masks" / split / vid / f"{vid}_{k + 1}.png", gt * 255)
            _write_wav(data / "audio_wav" / split / f"{vid}.wav", audio)
            rows.append((vid, split))
    _write_csv(root / "ms3_meta_data.csv", ("video_id", "split"), rows)
    return root


def _write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def generate(out_dir: str | Path, subset: str, p: SyntheticParams) -> Path:
    """Generate the synthetic dataset for ``subset`` (``s4`` or ``ms3``)."""
    return {"s4": generate_s4, "ms3": generate_ms3}[subset](out_dir, p)
