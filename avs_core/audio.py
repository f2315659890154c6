"""Audio features, batched on torch.

* :func:`log_spectrogram`: the EZ-VSL / SLAVC / FNAC / WS-AVS input, exactly as their public
  code computes it (``scipy.signal.spectrogram(x, fs, nperseg=512, noverlap=274)``: periodic
  Tukey(0.25) window, per-segment mean removed, one-sided PSD density; then ``log(S + 1e-7)`` and
  ``/ 12``). 257 frequency bins; the hop is 238 samples, so the time axis depends on the sample
  rate (16 kHz, 3 s: 200 steps). The WS-AVS paper's "257 x 300, 50 ms / 25 ms" does not match
  that code; we follow the code (reference notes, §6.2).
* :func:`vggish_logmel`: the AVSBench / VGGish framing: 25 ms periodic-Hann STFT (hop 10 ms,
  FFT 512, magnitude), 64 HTK mel bands 125-7500 Hz, ``log(mel + 0.01)``, examples of 96 x 64
  with hop 96 (0.96 s each, not aligned to seconds), the last repeated up to ``num_examples``.
* :func:`clip_windows`: which samples feed which window (whole clip, centred N s, or per frame).
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import torch
import torchaudio.functional as AF

NPERSEG, NOVERLAP = 512, 274
HOP = NPERSEG - NOVERLAP  # 238
FREQ_BINS = NPERSEG // 2 + 1  # 257
LOG_EPS, SPEC_STD = 1e-7, 12.0

VGGISH_RATE = 16000
VGGISH_WIN, VGGISH_HOP, VGGISH_FFT = 400, 160, 512
VGGISH_MELS, VGGISH_FMIN, VGGISH_FMAX = 64, 125.0, 7500.0
VGGISH_EXAMPLE = 96
VGGISH_LOG_OFFSET = 0.01

# frame k (1-based) of an AVSBench clip is taken ~0.94 s into second k-1 (reference notes §1.4)
FRAME_OFFSET_S = 0.94

_TUKEY = torch.from_numpy(scipy.signal.get_window(("tukey", 0.25), NPERSEG).astype(np.float64))


def spectrogram_frames(num_samples: int) -> int:
    """Time steps of :func:`log_spectrogram` for ``num_samples`` samples."""
    return 1 + (num_samples - NPERSEG) // HOP


def log_spectrogram(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """EZ-VSL log spectrogram.

    Args:
        wave: ``[B, L]`` float waveform in [-1, 1], L >= 512.
        sample_rate: Hz; only scales the PSD (density = power / (fs * sum(w^2))).

    Returns:
        ``[B, 1, 257, T]`` float32, T = 1 + (L - 512) // 238. Silence gives log(1e-7) / 12.
    """
    if wave.ndim != 2 or wave.shape[-1] < NPERSEG:
        raise ValueError(f"wave must be [B, L] with L >= {NPERSEG}, got {tuple(wave.shape)}")
    x = wave.to(torch.float64)
    seg = x.unfold(-1, NPERSEG, HOP)  # [B, T, 512]
    seg = seg - seg.mean(dim=-1, keepdim=True)
    win = _TUKEY.to(x.device)
    power = torch.fft.rfft(seg * win, n=NPERSEG).abs().square()  # [B, T, 257]
    power = power / (sample_rate * win.square().sum())
    power[..., 1:-1] *= 2  # one-sided; DC and Nyquist are not doubled
    spec = torch.log(power + LOG_EPS) / SPEC_STD
    return spec.transpose(1, 2).unsqueeze(1).to(torch.float32)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + f / 700.0)


def vggish_mel_matrix() -> torch.Tensor:
    """``[257, 64]`` VGGish mel weights (``mel_features.spectrogram_to_mel_matrix``, DC row zeroed)."""
    bins_mel = _hz_to_mel(np.linspace(0.0, VGGISH_RATE / 2, VGGISH_FFT // 2 + 1))
    edges = np.linspace(_hz_to_mel(np.array(VGGISH_FMIN)), _hz_to_mel(np.array(VGGISH_FMAX)), VGGISH_MELS + 2)
    weights = np.empty((len(bins_mel), VGGISH_MELS))
    for i in range(VGGISH_MELS):
        lower, centre, upper = edges[i:i + 3]
        weights[:, i] = np.maximum(0.0, np.minimum((bins_mel - lower) / (centre - lower),
                                                   (upper - bins_mel) / (upper - centre)))
    weights[0, :] = 0.0
    return torch.from_numpy(weights)


_MEL = vggish_mel_matrix()
_HANN = torch.from_numpy(0.5 - 0.5 * np.cos(2 * np.pi / VGGISH_WIN * np.arange(VGGISH_WIN)))


def vggish_logmel(wave: torch.Tensor, sample_rate: int, num_examples: int = 5) -> torch.Tensor:
    """VGGish log-mel examples as AVSBench frames them.

    Args:
        wave: ``[B, L]`` float waveform in [-1, 1]; resampled to 16 kHz if needed.
        num_examples: examples per clip; missing ones repeat the last (AVSBench S4/MS3), extra
            ones are dropped.

    Returns:
        ``[B, num_examples, 96, 64]`` float32.
    """
    x = wave.to(torch.float64)
    if sample_rate != VGGISH_RATE:
        x = AF.resample(x, sample_rate, VGGISH_RATE)
    if x.shape[-1] < VGGISH_WIN:
        raise ValueError(f"audio too short for VGGish framing: {x.shape[-1]} samples at 16 kHz")
    frames = x.unfold(-1, VGGISH_WIN, VGGISH_HOP)  # [B, F, 400]
    mag = torch.fft.rfft(frames * _HANN.to(x.device), n=VGGISH_FFT).abs()  # [B, F, 257]
    logmel = torch.log(mag @ _MEL.to(x.device) + VGGISH_LOG_OFFSET)  # [B, F, 64]
    if logmel.shape[1] < VGGISH_EXAMPLE:
        raise ValueError("audio too short for one 0.96 s VGGish example")
    examples = logmel.unfold(1, VGGISH_EXAMPLE, VGGISH_EXAMPLE).transpose(2, 3)  # [B, N, 96, 64]
    if examples.shape[1] < num_examples:
        pad = examples[:, -1:].expand(-1, num_examples - examples.shape[1], -1, -1)
        examples = torch.cat([examples, pad], dim=1)
    return examples[:, :num_examples].to(torch.float32)


def centre_window(num_samples: int, sample_rate: int, seconds: float) -> tuple[int, int]:
    """``[start, stop)`` of the ``seconds``-long window centred in the clip (EZ-VSL's 3 s crop)."""
    length = int(round(seconds * sample_rate))
    start = max(int(round((num_samples / sample_rate / 2 - seconds / 2) * sample_rate)), 0)
    return start, min(start + length, num_samples)


def frame_windows(num_samples: int, sample_rate: int, seconds: float, num_frames: int = 5) -> list[tuple[int, int]]:
    """``[start, stop)`` per frame: ``seconds`` centred on the frame instant (k-1) + 0.94 s,
    shifted to stay inside the clip."""
    length = int(round(seconds * sample_rate))
    out = []
    for k in range(1, num_frames + 1):
        centre = (k - 1 + FRAME_OFFSET_S) * sample_rate
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
        ``logspec_frames [B, num_frames, 1, 257, Tf]`` and ``vggish [B, num_frames, 96, 64]``.
    """
    n = wave.shape[-1]
    c0, c1 = centre_window(n, sample_rate, centre_seconds)
    per_frame = [log_spectrogram(wave[:, a:b], sample_rate) for a, b in frame_windows(n, sample_rate, frame_seconds, num_frames)]
    return {
        "logspec_clip": log_spectrogram(wave, sample_rate),
        "logspec_centre": log_spectrogram(wave[:, c0:c1], sample_rate),
        "logspec_frames": torch.stack(per_frame, dim=1),
        "vggish": vggish_logmel(wave, sample_rate, num_frames),
    }
