"""Decode one video's frames, masks and audio, validating every file at the edge.

Every failure raises :class:`DataError` naming the video and the file; nothing is replaced by
another sample. Defined conversions (logged, not errors): grayscale or RGBA frames become RGB,
stereo audio is averaged to mono, other sample rates are resampled, masks are binarised with
``> 0``, clips shorter than the expected length are tiled.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from avs_core.data.records import DataError, VideoRecord

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # below this peak amplitude a clip carries no usable sound


@dataclass
class VideoArrays:
    """One decoded video.

    Attributes:
        frames: ``[T, 3, S, S]`` uint8 RGB, resized to the pipeline's image size.
        masks: ``[T, H0, W0]`` uint8 in {0, 1} at the frames' native size; zeros where not annotated.
        annotated: ``[T]`` bool.
        audio: ``[L]`` float32 mono in [-1, 1] at the target sample rate, L = seconds * rate.
    """

    frames: np.ndarray
    masks: np.ndarray
    annotated: np.ndarray
    audio: np.ndarray


def read_frame(video_id: str, path: Path) -> np.ndarray:
    """Read an image as ``[H, W, 3]`` uint8 RGB."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DataError(video_id, path, "unreadable image", "the file is corrupt or not an image; restore it")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        log.warning("video '%s': grayscale frame converted to RGB: %s", video_id, path)
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        log.warning("video '%s': RGBA frame, alpha dropped: %s", video_id, path)
        img = img[:, :, :3]
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(video_id: str, path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    """Read a binary mask, ``> 0`` on any channel, and check it has the frame's size."""
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None or m.size == 0:
        raise DataError(video_id, path, "unreadable mask", "the file is corrupt or not an image; restore it")
    if m.ndim == 3:
        m = m.max(axis=2)
    if m.shape != size_hw:
        raise DataError(video_id, path, f"mask is {m.shape[1]}x{m.shape[0]} but its frame is "
                        f"{size_hw[1]}x{size_hw[0]}", "masks must have their frame's size")
    return (m > 0).astype(np.uint8)


def _declared_wav_bytes(path: Path) -> int | None:
    """End offset of the RIFF ``data`` chunk as the header declares it (libsndfile hides truncation)."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return None if size == 0xFFFFFFFF else fh.tell() + size
            fh.seek(size + (size & 1), 1)


def read_audio(video_id: str, path: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """Read a WAV as mono float32 at ``sample_rate``, exactly ``seconds`` long.

    Stereo is averaged, other rates are resampled, values are clipped to [-1, 1], a short clip
    is tiled (as EZ-VSL does), a long one is cut. Empty, truncated, unreadable or silent files
    raise :class:`DataError`.
    """
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DataError(video_id, path, f"unreadable WAV ({exc})", "re-extract the audio at 16 kHz") from None
    if wav.shape[0] == 0:
        raise DataError(video_id, path, "empty WAV (0 samples)", "re-extract the audio")
    declared = _declared_wav_bytes(path)
    if declared is not None and declared > path.stat().st_size:
        raise DataError(video_id, path, f"truncated WAV: the header declares {declared} bytes, "
                        f"the file has {path.stat().st_size}", "re-extract the audio")
    if not np.isfinite(wav).all():
        raise DataError(video_id, path, "WAV holds NaN or infinite samples", "re-extract the audio")
    mono = np.clip(wav.mean(axis=1), -1.0, 1.0)
    if rate != sample_rate:
        g = math.gcd(rate, sample_rate)  # polyphase FIR (Kaiser window): anti-aliased, as librosa's 'polyphase'
        mono = resample_poly(mono, sample_rate // g, rate // g).astype(np.float32)
    if np.abs(mono).max() < SILENCE_PEAK:
        raise DataError(video_id, path, "silent audio (peak below 1e-4)",
                        "a silent clip cannot say which object sounds; drop the video or use data.on_error=skip")
    length = int(round(seconds * sample_rate))
    if mono.shape[0] < length:
        log.warning("video '%s': audio is %.2f s, tiled to %.2f s: %s", video_id,
                    mono.shape[0] / sample_rate, seconds, path)
        mono = np.tile(mono, -(-length // mono.shape[0]))
    return np.ascontiguousarray(mono[:length], dtype=np.float32)


def load_video(record: VideoRecord, image_size: int, sample_rate: int, seconds: float = 5.0) -> VideoArrays:
    """Decode and validate one video of the binary layouts (S4 / MS3)."""
    frames, masks = [], []
    native = None
    for frame_path, mask_path in zip(record.frame_paths, record.mask_paths):
        img = read_frame(record.video_id, frame_path)
        if native is None:
            native = img.shape[:2]
        elif img.shape[:2] != native:
            raise DataError(record.video_id, frame_path, f"frame size {img.shape[1]}x{img.shape[0]} differs "
                            f"from the video's first frame {native[1]}x{native[0]}")
        mask = read_mask(record.video_id, mask_path, native) if mask_path else np.zeros(native, np.uint8)
        frames.append(cv2.resize(img, (image_size, image_size), interpolation=cv2.INTER_LINEAR))
        masks.append(mask)
    audio = read_audio(record.video_id, record.audio_path, sample_rate, seconds)
    return VideoArrays(
        frames=np.stack(frames).transpose(0, 3, 1, 2).copy(),  # [T, 3, S, S]
        masks=np.stack(masks),
        annotated=np.array(record.annotated, dtype=bool),
        audio=audio,
    )


def read_label_map(video_id: str, path: Path, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """Read an AVSS colour label map as ``[H, W]`` int64 class indices.

    Each pixel's RGB is matched exactly against ``palette``; colours outside it map to 0
    (background), as the official ``color_mask_to_label`` does.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(video_id, path, "unreadable label map", "the file is corrupt or not an image; restore it")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    out = np.zeros(code.shape, np.int64)
    for value, index in lookup.items():
        out[code == value] = index
    return out
