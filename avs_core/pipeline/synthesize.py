"""Embedded synthetic dataset, written in the exact AVSBench S4 / MS3 on-disk layouts.

What it is: videos of 5 frames (PNG, ``frame_size`` squared) and 5 s of 16 kHz mono audio. Each
category has a recognisable but varied look (shape and hue; random size, texture, colour jitter,
rotation, motion between frames, occlusion) and a recognisable but varied sound (timbre, pitch,
rhythm; background noise). Most frames also show *silent* distractor objects of other
categories, so the audio is needed to know which object to segment. Ground-truth masks are the
exact visible pixels of the sounding object(s).

Styles (``data.synthetic.style``), each a different world so that defaults cannot be tuned to
one look: ``shapes`` (muted gradient background with rectangle / line clutter, flat-hued shapes,
tonal and rhythmic sounds), ``textured`` (multi-scale colour-noise backgrounds, other shapes
and palette, percussive and noisy sounds) and ``flat`` (one-colour backgrounds crowded with small
disc / ring clutter, smaller pastel objects, chirps and beeps). ``diagnostics/{split}.h5`` beside
the layout holds the masks of all objects, silent ones included (objectness quality only).

What it is not: AVSBench. It exists to run, test and regression-track the pipeline on a machine
without the real data; numbers measured on it are not AVSBench numbers.

S4 variant: one sounding object per video, CSV ``name,start,category,split``, train videos carry
the frame-1 mask only. MS3 variant: 2-3 sources per video that switch on and off per 1-second
clip (frame k shows the objects sounding during second k-1), masks for all frames.
"""
from __future__ import annotations

import contextlib
import csv
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from avs_core.config import DIAGNOSTICS_DIR, SyntheticParams
from avs_core.data.avsbench import MS3_DIR, S4_DIR
from avs_core.data.records import SPLITS
from avs_core.store import create_h5, write_strings

SAMPLE_RATE = 16000
FRAMES = 5
# frame k (1-based) is taken ~0.94 s into second k-1, as in the AVSBench preprocessing
FRAME_TIMES = tuple(k - 1 + 0.94 for k in range(1, FRAMES + 1))


@dataclass(frozen=True)
class Category:
    """A category's look (``shape``, base ``rgb``) and its sound generator (the category name)."""

    name: str
    shape: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    """One visibly and audibly different world: background, object set and sound families.

    ``background``: ``gradient`` (muted gradient + rectangle / line clutter), ``blobs`` (smoothed
    multi-scale colour noise) or ``flat`` (one colour + many small disc and ring clutter marks).
    ``radius``: object radius range as a fraction of the frame side.
    """

    name: str
    background: str
    categories: tuple[Category, ...]
    radius: tuple[float, float]


STYLES = {s.name: s for s in (
    # the original look: flat-hued shapes, tonal / rhythmic sounds
    Style("shapes", "gradient", (
        Category("bell", "circle", (235, 195, 40)),
        Category("drum", "square", (205, 45, 40)),
        Category("bird", "triangle", (50, 110, 225)),
        Category("engine", "bar", (125, 130, 135)),
        Category("siren", "star", (215, 60, 200)),
        Category("guitar", "ellipse", (60, 175, 80)),
    ), (0.12, 0.22)),
    # textured noise backgrounds, other shapes and palette, percussive and noisy sounds
    Style("textured", "blobs", (
        Category("rain", "hexagon", (90, 200, 210)),
        Category("clap", "cross", (240, 140, 30)),
        Category("ticker", "diamond", (150, 70, 200)),
        Category("hum", "ring", (110, 160, 60)),
        Category("whistle", "pentagon", (230, 230, 220)),
        Category("horn", "crescent", (180, 40, 90)),
    ), (0.14, 0.24)),
    # flat backgrounds with dense small clutter, smaller objects, pastel palette, chirps
    Style("flat", "flat", (
        Category("upchirp", "trapezoid", (250, 170, 170)),
        Category("downchirp", "halfdisc", (170, 200, 250)),
        Category("pulse", "square", (190, 240, 170)),
        Category("noiseband", "circle", (245, 225, 150)),
        Category("trill", "triangle", (220, 170, 240)),
        Category("gong", "cross", (160, 235, 225)),
    ), (0.10, 0.18)),
)}
CATEGORIES = STYLES["shapes"].categories  # the default style's categories


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
    elif name == "rain":  # band-passed noise bed with droplets
        bed = np.convolve(rng.standard_normal(n), np.hanning(9) / 4, mode="same")
        out += bed * (1 - np.cos(2 * np.pi * rng.uniform(3000, 5000) * _t(n))) * 0.5
        tt = _t(int(0.03 * SAMPLE_RATE))
        for on in _events(rng, seconds, 0.05, 0.15):
            _place(out, on, 2 * np.sin(2 * np.pi * rng.uniform(1500, 3000) * tt) * np.exp(-tt * 120))
    elif name == "clap":  # sharp broadband bursts at irregular gaps
        tt = _t(int(0.08 * SAMPLE_RATE))
        for on in _events(rng, seconds, 0.25, 0.7):
            _place(out, on, rng.standard_normal(len(tt)) * np.exp(-tt * 60))
    elif name == "ticker":  # fast click train
        rate = rng.uniform(8, 18)
        tt = _t(int(0.006 * SAMPLE_RATE))
        click = np.sin(2 * np.pi * rng.uniform(4000, 6000) * tt) * np.hanning(len(tt))
        for on in np.arange(rng.uniform(0, 0.05), seconds, 1 / rate):
            _place(out, on, click)
    elif name == "hum":  # steady low hum with harmonics
        tt = _t(n)
        f0 = rng.uniform(45, 70)
        out += sum(np.sin(2 * np.pi * f0 * h * tt) / h ** 0.5 for h in (1, 2, 3, 5))
    elif name == "whistle":  # high tone with vibrato
        tt = _t(n)
        freq = rng.uniform(1600, 2400) + 60 * np.sin(2 * np.pi * rng.uniform(4, 7) * tt)
        out += np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
    elif name == "horn":  # square-ish blasts
        f0 = rng.uniform(280, 420)
        tt = _t(int(0.5 * SAMPLE_RATE))
        grain = np.tanh(4 * np.sin(2 * np.pi * f0 * tt)) * np.hanning(len(tt)) ** 0.3
        for on in _events(rng, seconds, 0.7, 1.2):
            _place(out, on, grain)
    elif name in ("upchirp", "downchirp"):  # repeated sweeps
        dur = rng.uniform(0.25, 0.45)
        tt = _t(int(dur * SAMPLE_RATE))
        lo, hi = rng.uniform(300, 600), rng.uniform(2500, 3500)
        freq = lo + (hi - lo) * tt / dur if name == "upchirp" else hi - (hi - lo) * tt / dur
        grain = np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * np.hanning(len(tt))
        for on in _events(rng, seconds, dur + 0.05, dur + 0.3):
            _place(out, on, grain)
    elif name == "pulse":  # short pure beeps
        tt = _t(int(0.1 * SAMPLE_RATE))
        grain = np.sin(2 * np.pi * rng.uniform(900, 1300) * tt) * np.hanning(len(tt)) ** 0.2
        for on in _events(rng, seconds, 0.2, 0.4):
            _place(out, on, grain)
    elif name == "noiseband":  # low rumble
        out += np.convolve(rng.standard_normal(n), np.ones(40) / 40, mode="same")
    elif name == "trill":  # two tones alternating fast
        tt = _t(n)
        f1, f2 = rng.uniform(700, 900), rng.uniform(1100, 1400)
        freq = np.where(np.sin(2 * np.pi * rng.uniform(10, 16) * tt) > 0, f1, f2)
        out += np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
    elif name == "gong":  # inharmonic low decay
        f0 = rng.uniform(110, 180)
        tt = _t(int(2.0 * SAMPLE_RATE))
        grain = sum(a * np.sin(2 * np.pi * f0 * p * tt) for p, a in ((1, 1), (1.48, .7), (2.31, .5), (3.7, .3)))
        grain *= np.exp(-tt * rng.uniform(1.2, 2.5))
        for on in _events(rng, seconds, 1.2, 2.0):
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
    if shape in ("ring", "crescent", "halfdisc"):
        c = (int(round(cx)), int(round(cy)))
        cv2.circle(m, c, int(round(radius)), 1, -1)
        if shape == "ring":
            cv2.circle(m, c, int(round(radius * 0.5)), 0, -1)
        elif shape == "crescent":
            off = (int(round(cx + radius * 0.45 * np.cos(angle))), int(round(cy + radius * 0.45 * np.sin(angle))))
            cv2.circle(m, off, int(round(radius * 0.8)), 0, -1)
        else:
            cut = np.zeros_like(m)
            cv2.rectangle(cut, (0, int(round(cy + radius * 0.1))), (size, size), 1, -1)
            m[cut.astype(bool)] = 0
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
    elif shape in ("hexagon", "pentagon", "diamond"):
        k = {"hexagon": 6, "pentagon": 5, "diamond": 4}[shape]
        pts = [(radius * np.cos(a), radius * np.sin(a) * (0.7 if k == 4 else 1)) for a in np.arange(k) * 2 * np.pi / k]
    elif shape == "cross":
        a, b = radius, radius * 0.35
        pts = [(b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b), (-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b)]
    elif shape == "trapezoid":
        pts = [(radius, radius * 0.6), (-radius, radius * 0.6), (-radius * 0.5, -radius * 0.6), (radius * 0.5, -radius * 0.6)]
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


def _background(rng, size: int, kind: str) -> np.ndarray:
    if kind == "blobs":
        return _blob_background(rng, size)
    if kind == "flat":
        return _flat_background(rng, size)
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


def _cubic_taps(cells: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``[size, 4]`` int and weights ``[size, 4]`` float64 of Keys' cubic
    (a = -0.75, OpenCV's INTER_CUBIC) from ``cells`` samples to ``size``, pixel centres aligned,
    edges clamped."""
    src = (np.arange(size) + 0.5) * (cells / size) - 0.5
    first = np.floor(src)
    x = src - first                                           # [size] in [0, 1)
    a = -0.75
    w0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    w1 = ((a + 2) * x - (a + 3)) * x * x + 1
    w2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    weights = np.stack([w0, w1, w2, 1 - w0 - w1 - w2], axis=1)
    index = np.clip(first.astype(np.int64)[:, None] + np.arange(-1, 3), 0, cells - 1)
    return index, weights


def _cubic_upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """``[cells, cells, C]`` -> ``[size, size, C]`` float64 by separable cubic interpolation.

    Element-wise products and sums in a fixed order, so every CPU computes the same bits:
    ``cv2.resize`` does not (its SIMD paths round differently; with OpenCV's optimisations off,
    554 of 1,029 ``textured`` files changed, session 34)."""
    index, w = _cubic_taps(grid.shape[0], size)
    rows = sum(w[:, k, None, None] * grid[index[:, k]] for k in range(4))        # [size, cells, C]
    return sum(w[None, :, k, None] * rows[:, index[:, k]] for k in range(4))     # [size, size, C]


def _blob_background(rng, size: int) -> np.ndarray:
    """Smoothed colour noise at three scales: large soft blobs with finer mottling."""
    img = np.zeros((size, size, 3))
    for cells, weight in ((4, 0.6), (12, 0.3), (40, 0.1)):
        img += weight * _cubic_upsample(rng.uniform(30, 210, (cells, cells, 3)), size)
    return np.clip(img, 0, 255)


def _flat_background(rng, size: int) -> np.ndarray:
    """One colour with many small discs and rings of any colour (clutter that looks like objects)."""
    img = np.empty((size, size, 3))
    img[:] = rng.uniform(20, 235, 3)
    for _ in range(rng.integers(15, 35)):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(2, max(3, size // 28)))
        cv2.circle(img, (x, y), r, rng.uniform(0, 255, 3).tolist(), -1 if rng.random() < 0.6 else 2)
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


def _new_object(rng, cat: Category, size: int, style: Style, others: list[_Object] = ()) -> _Object:
    """A new object placed so that it does not cover the ones already placed (up to 50 tries)."""
    radius = rng.uniform(*style.radius) * size
    margin = radius * 1.15
    for _ in range(50):
        centre = rng.uniform(margin, size - margin, 2)
        if all(np.linalg.norm(centre - o.centre) > 1.1 * (radius + o.radius) for o in others):
            break
    return _Object(cat, _texture(rng, size, cat.rgb), centre, rng.normal(0, 0.012 * size, 2), radius,
                   rng.uniform(0, 2 * np.pi), rng.normal(0, 0.15))


def _render(rng, objects: list[_Object], p: SyntheticParams, size: int, style: Style):
    """Draw the 5 frames. Returns frames ``[5, S, S, 3]`` uint8 and visible masks ``[5, n_obj, S, S]``."""
    background = _background(rng, size, style.background)
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


def _distractors(rng, exclude: set[str], p: SyntheticParams, size: int, style: Style,
                 placed: list[_Object]) -> list[_Object]:
    """Silent objects of other categories, placed clear of the ``placed`` ones."""
    if rng.random() >= p.distractor_prob or p.max_distractors == 0:
        return []
    pool = [c for c in style.categories if c.name not in exclude]
    n = int(rng.integers(1, p.max_distractors + 1))
    out = list(placed)
    for i in rng.choice(len(pool), min(n, len(pool)), replace=False):
        out.append(_new_object(rng, pool[i], size, style, out))
    return out[len(placed):]


@contextlib.contextmanager
def _diagnostics_file(out_dir: Path, split: str, videos: int, size: int) -> Iterator[Callable[[str, np.ndarray], None]]:
    """Masks of *all* objects (silent distractors included) per frame, written beside the layout
    as ``diagnostics/{split}.h5`` (``ids`` [V], ``objects`` [V, 5, S, S] uint8 {0, 1}), one video
    at a time (memory stays flat in the split size).

    Yields ``add(video_id, visible [5, objects, S, S])``; call it once per video, in order.
    Outside the AVSBench layout, so no reader sees it; only the objectness quality reports read it.
    """
    ids: list[str] = []
    with create_h5(out_dir / DIAGNOSTICS_DIR / f"{split}.h5", stage="synthesize", split=split) as fh:
        objects = fh.create_dataset("objects", shape=(videos, FRAMES, size, size), dtype="u1", compression="gzip",
                                    compression_opts=4, chunks=(1, FRAMES, size, size) if videos else None)

        def add(vid: str, visible: np.ndarray) -> None:
            objects[len(ids)] = visible.max(axis=1)  # [5, S, S]: any object
            ids.append(vid)

        yield add
        if len(ids) != videos:
            raise RuntimeError(f"diagnostics/{split}.h5: {len(ids)} videos added, {videos} expected")
        write_strings(fh, "ids", ids)


def generate_s4(out_dir: str | Path, p: SyntheticParams) -> Path:
    """Write a synthetic dataset in the S4 layout under ``out_dir/Single-source``. Returns that folder."""
    root = Path(out_dir) / S4_DIR
    data = root / "s4_data"
    size, style = p.frame_size, STYLES[p.style]
    rows, used = [], set()
    for split_index, split in enumerate(SPLITS):
        n = _split_sizes(p)[split]
        cats = [style.categories[i % len(style.categories)] for i in range(n)]
        with _diagnostics_file(Path(out_dir), split, n, size) as add_diagnostics:
            for i, cat in enumerate(cats):
                rng = np.random.default_rng([p.seed, split_index, i])
                vid = _video_id(rng)
                while vid in used:
                    vid = _video_id(rng)
                used.add(vid)
                sounding = [_new_object(rng, cat, size, style)]
                objects = sounding + _distractors(rng, {cat.name}, p, size, style, sounding)
                frames, visible = _render(rng, objects, p, size, style)
                audio = _mix(rng, [_sound(cat.name, rng, p.seconds)], p)
                n_masks = 1 if split == "train" else FRAMES
                for k in range(FRAMES):
                    _write_png(data / "visual_frames" / split / cat.name / vid / f"{vid}_{k + 1}.png", frames[k])
                    if k < n_masks:
                        _write_png(data / "gt_masks" / split / cat.name / vid / f"{vid}_{k + 1}.png",
                                   visible[k, 0] * 255)
                _write_wav(data / "audio_wav" / split / cat.name / f"{vid}.wav", audio)
                add_diagnostics(vid, visible)
                rows.append((vid, 0, cat.name, split))
    _write_csv(root / "s4_meta_data.csv", ("name", "start", "category", "split"), rows)
    return root


def generate_ms3(out_dir: str | Path, p: SyntheticParams) -> Path:
    """Write a synthetic dataset in the MS3 layout under ``out_dir/Multi-sources``. Returns that folder."""
    root = Path(out_dir) / MS3_DIR
    data = root / "ms3_data"
    size, style = p.frame_size, STYLES[p.style]
    pool = style.categories
    rows, used = [], set()
    for split_index, split in enumerate(SPLITS):
        n = _split_sizes(p)[split]
        with _diagnostics_file(Path(out_dir), split, n, size) as add_diagnostics:
            for i in range(n):
                rng = np.random.default_rng([p.seed, 100 + split_index, i])
                vid = _video_id(rng) + (f"_{int(rng.integers(1, 40))}" if rng.random() < 0.3 else "")
                while vid in used:
                    vid = _video_id(rng)
                used.add(vid)
                n_src = int(rng.integers(2, 4))
                cats = [pool[j] for j in rng.choice(len(pool), n_src, replace=False)]
                sources: list[_Object] = []
                for c in cats:
                    sources.append(_new_object(rng, c, size, style, sources))
                objects = sources + _distractors(rng, {c.name for c in cats}, p, size, style, sources)[:1]
                # which source sounds in which second; most seconds have at least one
                active = rng.random((FRAMES, n_src)) < 0.6
                for k in range(FRAMES):
                    if not active[k].any() and rng.random() < 0.8:
                        active[k, rng.integers(0, n_src)] = True
                frames, visible = _render(rng, objects, p, size, style)
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
                add_diagnostics(vid, visible)
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
