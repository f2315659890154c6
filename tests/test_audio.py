import numpy as np
import pytest
import scipy.signal
import torch

from avs_core import audio as A


def scipy_reference(x, rate):
    _, _, s = scipy.signal.spectrogram(x.astype(np.float64), rate, nperseg=512, noverlap=274)
    return np.log(s + 1e-7) / 12.0


@pytest.mark.parametrize("rate,seconds,steps", [(16000, 3.0, 200), (22050, 3.0, 276), (24000, 3.0, 301)])
def test_log_spectrogram_equals_ezvsl_scipy_code(rate, seconds, steps):
    x = np.random.default_rng(0).uniform(-1, 1, int(rate * seconds)).astype(np.float32)
    ours = A.log_spectrogram(torch.from_numpy(x)[None], rate)[0, 0].numpy()
    assert ours.shape == (257, steps) == scipy_reference(x, rate).shape
    # float32 against scipy's float64: 1e-5 on the log(S + 1e-7) / 12 scale (0.012 % of S; ~1e-6 measured)
    np.testing.assert_allclose(ours, scipy_reference(x, rate), atol=1e-5)


def test_log_spectrogram_float32_holds_in_spectral_valleys():
    t = np.arange(16000 * 2) / 16000
    tone = (0.99 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # deep valleys between harmonics of leakage
    quiet = (1e-4 * np.random.default_rng(1).standard_normal(len(t))).astype(np.float32)
    for x in (tone, quiet, tone + quiet):
        ours = A.log_spectrogram(x[None], 16000)[0, 0].numpy()
        np.testing.assert_allclose(ours, scipy_reference(x, 16000), atol=1e-5)


def test_batch_is_per_row():
    x = torch.randn(3, 16000) * 0.1
    batch = A.log_spectrogram(x, 16000)
    one = A.log_spectrogram(x[1:2], 16000)
    torch.testing.assert_close(batch[1:2], one)


def test_silence_and_clipping_are_finite():
    silent = A.log_spectrogram(torch.zeros(1, 16000), 16000)
    assert torch.allclose(silent, torch.full_like(silent, float(np.log(1e-7) / 12)))
    clipped = torch.sign(torch.sin(torch.arange(16000.0))).unsqueeze(0)
    assert torch.isfinite(A.log_spectrogram(clipped, 16000)).all()


def test_too_short_is_an_error():
    with pytest.raises(ValueError, match="L >= 512"):
        A.log_spectrogram(torch.zeros(1, 100), 16000)


def test_windows():
    assert A.centre_window(80000, 16000, 3.0) == (16000, 64000)
    w = A.frame_windows(80000, 16000, 1.0)
    assert w == [(16000 * k, 16000 * (k + 1)) for k in range(5)]  # frame k+1: second k, its annotated clip
    assert A.frame_windows(80000, 16000, 1.5)[0] == (0, 24000)  # shifted inside the clip
    assert A.frame_windows(80000, 16000, 1.5)[2] == (28000, 52000)  # centred on 2.5 s
    feats = A.clip_features(torch.randn(2, 80000) * 0.1, 16000, 3.0, 1.0)
    assert feats["logspec_clip"].shape == (2, 1, 257, 334)
    assert feats["logspec_centre"].shape == (2, 1, 257, 200)
    assert feats["logspec_frames"].shape == (2, 5, 1, 257, 66)
    assert set(feats) == {"logspec_clip", "logspec_centre", "logspec_frames"}
