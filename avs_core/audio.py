"""Audio features.

* :func:`log_spectrogram`: the EZ-VSL / SLAVC / FNAC / WS-AVS input, as their public code
  computes it, in float32 where theirs is float64 (``scipy.signal.spectrogram(x, fs,
  nperseg=512, noverlap=274)``: periodic Tukey(0.25) window, per-segment mean removed, one-sided PSD density; then ``log(S + 1e-7)`` and
  ``/ 12``). 257 frequency bins; the hop is 238 samples, so the time axis depends on the sample
  rate (16 kHz, 3 s: 200 steps). The WS-AVS paper's "257 x 300, 50 ms / 25 ms" does not match
  that code; we follow the code (reference notes, §6.2).
* :func:`clip_features`: which samples feed which window (whole clip, centred N s, or per frame).
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal
import torch
from numpy.lib.stride_tricks import sliding_window_view

NPERSEG, NOVERLAP = 512, 274
HOP = NPERSEG - NOVERLAP  # 238
FREQ_BINS = NPERSEG // 2 + 1  # 257
LOG_EPS, SPEC_STD = 1e-7, 12.0

# frame k (1-based) of an AVSBench clip closes its 1-s clip, second k-1 (taken ~0.94 s into it,
# reference notes §1.4), and is annotated with what sounds in that clip; the reference's audio
# feature k (VGGish example k) covers about that second too. Its audio window is centred on the clip.
CLIP_CENTRE_S = 0.5

_TUKEY = scipy.signal.get_window(("tukey", 0.25), NPERSEG)
_TUKEY32 = _TUKEY.astype(np.float32)


def spectrogram_frames(num_samples: int) -> int:
    """Time steps of :func:`log_spectrogram` for ``num_samples`` samples."""
    return 1 + (num_samples - NPERSEG) // HOP


def log_spectrogram(wave: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
    """EZ-VSL log spectrogram, in float32.

    Args:
        wave: ``[B, L]`` float waveform in [-1, 1], L >= 512.
        sample_rate: Hz; only scales the PSD (density = power / (fs * sum(w^2))).

    Returns:
        ``[B, 1, 257, T]`` float32, T = 1 + (L - 512) // 238. Silence gives log(1e-7) / 12.
        Within 1e-5 of the float64 scipy code on this scale (``tests/test_audio.py``).
    """
    x = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if x.ndim != 2 or x.shape[-1] < NPERSEG:
        raise ValueError(f"wave must be [B, L] with L >= {NPERSEG}, got {tuple(x.shape)}")
    x = x.astype(np.float32, copy=False)
    scale = np.float32(1.0 / (sample_rate * np.square(_TUKEY).sum()))
    out = np.empty((len(x), 1, FREQ_BINS, spectrogram_frames(x.shape[-1])), np.float32)
    for i, clip in enumerate(x):  # one clip at a time: float32 temporaries that stay in cache (bench/: 2.5x scipy)
        seg = sliding_window_view(clip, NPERSEG)[::HOP]  # [T, 512], a view
        seg = seg - seg.mean(axis=-1, keepdims=True)
        seg *= _TUKEY32
        spec = scipy.fft.rfft(seg, axis=-1)  # [T, 257] complex64
        power = np.square(spec.real)
        power += np.square(spec.imag)
        power *= scale
        power[:, 1:-1] *= 2  # one-sided; DC and Nyquist are not doubled
        power += np.float32(LOG_EPS)
        np.log(power, out=power)
        power /= np.float32(SPEC_STD)
        out[i, 0] = power.T
    return torch.from_numpy(out)


def centre_window(num_samples: int, sample_rate: int, seconds: float) -> tuple[int, int]:
    """``[start, stop)`` of the ``seconds``-long window centred in the clip (EZ-VSL's 3 s crop)."""
    length = int(round(seconds * sample_rate))
    start = max(int(round((num_samples / sample_rate / 2 - seconds / 2) * sample_rate)), 0)
    return start, min(start + length, num_samples)


def frame_windows(num_samples: int, sample_rate: int, seconds: float, num_frames: int = 5) -> list[tuple[int, int]]:
    """``[start, stop)`` per frame: ``seconds`` centred on the middle of second k-1, the 1-s clip
    frame k is annotated for, shifted to stay inside the clip (1 s: exactly second k-1).

    Why not the frame instant ((k-1) + 0.94 s): a 1-s window there takes 44 % of its audio from
    second k, whose sources frame k's mask does not show (MS3: they switch on and off per second).
    """
    length = int(round(seconds * sample_rate))
    out = []
    for k in range(1, num_frames + 1):
        centre = (k - 1 + CLIP_CENTRE_S) * sample_rate
        start = int(round(centre - length / 2))
        start = min(max(start, 0), max(num_samples - length, 0))
        out.append((start, min(start + length, num_samples)))
    return out


def clip_features(wave: torch.Tensor, sample_rate: int, centre_seconds: float,
                  frame_seconds: float, num_frames: int = 5) -> dict[str, torch.Tensor]:
    """Every audio feature the pipeline uses, for a batch of equal-length clips.

    Args:
        wave: ``[B, L]`` float32 clips (AVSBench: 5 s).

    Returns:
        ``logspec_clip [B, 1, 257, T]`` (whole clip), ``logspec_centre [B, 1, 257, Tc]``,
        and ``logspec_frames [B, num_frames, 1, 257, Tf]``.
    """
    n = wave.shape[-1]
    c0, c1 = centre_window(n, sample_rate, centre_seconds)
    per_frame = [log_spectrogram(wave[:, a:b], sample_rate) for a, b in frame_windows(n, sample_rate, frame_seconds, num_frames)]
    return {
        "logspec_clip": log_spectrogram(wave, sample_rate),
        "logspec_centre": log_spectrogram(wave[:, c0:c1], sample_rate),
        "logspec_frames": torch.stack(per_frame, dim=1),
    }
