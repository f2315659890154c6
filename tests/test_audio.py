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
    np.testing.assert_allclose(ours, scipy_reference(x, rate), atol=2e-6)


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
    assert torch.isfinite(A.vggish_logmel(torch.zeros(1, 80000), 16000)).all()


def test_too_short_is_an_error():
    with pytest.raises(ValueError, match="L >= 512"):
        A.log_spectrogram(torch.zeros(1, 100), 16000)


def _vggish_numpy(x):
    """Straight port of torchvggish mel_features (frame, periodic Hann, rfft, mel, log)."""
    def frame(d, w, h):
        n = 1 + (len(d) - w) // h
        return np.stack([d[i * h:i * h + w] for i in range(n)])
    win = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))
    spec = np.abs(np.fft.rfft(frame(x, 400, 160) * win, 512))
    mel = np.log(spec @ A.vggish_mel_matrix().numpy() + 0.01)
    return frame(mel, 96, 96)


def test_vggish_framing_matches_reference_port():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 80000)
    ours = A.vggish_logmel(torch.from_numpy(x)[None], 16000)[0].numpy()
    ref = _vggish_numpy(x)
    assert ours.shape == ref.shape == (5, 96, 64)  # 498 STFT frames -> 5 examples of 0.96 s
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_vggish_repeats_last_example_and_resamples():
    x = torch.from_numpy(np.random.default_rng(2).uniform(-0.5, 0.5, (1, 16000 * 3)))
    ex = A.vggish_logmel(x, 16000, num_examples=5)
    assert torch.equal(ex[0, 3], ex[0, 2]) and torch.equal(ex[0, 4], ex[0, 2])
    x44 = torch.randn(1, 44100 * 5) * 0.1
    assert A.vggish_logmel(x44, 44100).shape == (1, 5, 96, 64)


def test_mel_matrix_matches_vggish_definition():
    m = A.vggish_mel_matrix().numpy()
    assert m.shape == (257, 64) and (m[0] == 0).all() and (m >= 0).all()


def test_windows():
    assert A.centre_window(80000, 16000, 3.0) == (16000, 64000)
    w = A.frame_windows(80000, 16000, 1.0)
    assert w[0] == (7040, 23040)  # centred on 0.94 s
    assert w[4] == (64000, 80000)  # shifted inside the clip
    feats = A.clip_features(torch.randn(2, 80000) * 0.1, 16000, 3.0, 1.0)
    assert feats["logspec_clip"].shape == (2, 1, 257, 334)
    assert feats["logspec_centre"].shape == (2, 1, 257, 200)
    assert feats["logspec_frames"].shape == (2, 5, 1, 257, 66)
    assert feats["vggish"].shape == (2, 5, 96, 64)
