"""Readers on tiny fixtures in the official layouts, including broken ones."""
import shutil

import cv2
import numpy as np
import pytest
import soundfile as sf

from avs_core.data.avsbench import avss_frame_flags, avss_palette, read_avss, read_ms3, read_s4
from avs_core.data.loading import load_video, read_audio, read_frame, read_label_map, read_mask
from avs_core.data.records import DataError
from tests import layouts


def test_s4_layout(tmp_path):
    layouts.write_s4(tmp_path)
    idx = read_s4(tmp_path)  # the parent of Single-source works too
    assert not idx.problems
    assert [r.video_id for r in idx.records] == ["vidA", "vidB", "vidC", "vidD"]
    a = idx.records[0]
    assert a.split == "train" and a.category == "dog"
    assert a.annotated == (True, False, False, False, False)  # S4 train: frame 1 only
    assert a.frame_paths[2].name == "vidA_3.png"
    assert a.frame_paths[2].parent.as_posix().endswith("s4_data/visual_frames/train/dog/vidA")
    assert a.audio_path.as_posix().endswith("s4_data/audio_wav/train/dog/vidA.wav")
    assert idx.records[2].annotated == (True,) * 5


def test_ms3_layout(tmp_path):
    base = layouts.write_ms3(tmp_path)
    idx = read_ms3(base)
    assert not idx.problems
    rec = idx.records[1]
    assert rec.video_id == "m2_3"  # the _N suffix is part of the id
    assert rec.frame_paths[0].as_posix().endswith("ms3_data/visual_frames/m2_3/m2_3.mp4_1.png")
    assert rec.mask_paths[4].as_posix().endswith("ms3_data/gt_masks/train/m2_3/m2_3_5.png")
    assert rec.annotated == (True,) * 5


def test_avss_layout_and_label_colours(tmp_path):
    base = layouts.write_avss(tmp_path)
    idx = read_avss(base)
    assert not idx.problems
    by_id = {r.video_id: r for r in idx.records}
    assert by_id["s1"].annotated == (True, False, False, False, False)
    assert len(by_id["yt_0_10000"].frame_paths) == 10
    assert by_id["s1"].labels == ("dog",)
    pal = avss_palette()
    assert pal[0] == (0, 0, 0) and pal[1] == (128, 0, 0) and pal[70] == (32, 128, 128)
    assert len(set(pal)) == 71
    labels = read_label_map("s1", by_id["s1"].mask_paths[0], pal)
    assert set(np.unique(labels)) == {0, 1}
    assert avss_frame_flags("v1m", "test") == ([1] * 5 + [0] * 5, [1] * 5 + [0] * 5)


def test_avss_colour_outside_palette_is_background(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0] = (1, 2, 3)
    cv2.imwrite(str(tmp_path / "l.png"), img)
    assert read_label_map("v", tmp_path / "l.png", avss_palette()).max() == 0


def _only_problem(idx):
    assert len(idx.problems) == 1, idx.problems
    return idx.problems[0]


def test_missing_frame_is_named(tmp_path):
    base = layouts.write_s4(tmp_path)
    (base / "s4_data/visual_frames/val/dog/vidC/vidC_4.png").unlink()
    err = _only_problem(read_s4(base))
    assert err.video_id == "vidC" and "vidC_4.png" in str(err) and "frame missing" in str(err)


def test_csv_row_without_files(tmp_path):
    base = layouts.write_s4(tmp_path)
    with (base / "s4_meta_data.csv").open("a") as fh:
        fh.write("ghost,0,dog,test\n")
    err = _only_problem(read_s4(base))
    assert err.video_id == "ghost" and "no files" in str(err)


def test_category_folder_mismatch(tmp_path):
    base = layouts.write_s4(tmp_path)
    csv = base / "s4_meta_data.csv"
    csv.write_text(csv.read_text().replace("vidD,0,cat,test", "vidD,0,dog,test"))
    err = _only_problem(read_s4(base))
    assert "found under category folder 'cat'" in str(err)


def test_duplicate_id_and_unknown_split(tmp_path):
    base = layouts.write_s4(tmp_path)
    with (base / "s4_meta_data.csv").open("a") as fh:
        fh.write("vidA,0,dog,train\nvidZ,0,dog,holdout\n")
    problems = read_s4(base).problems
    assert {p.problem for p in problems} == {"duplicate id in the CSV", "unknown split 'holdout'"}


def test_csv_without_required_column(tmp_path):
    base = layouts.write_ms3(tmp_path)
    (base / "ms3_meta_data.csv").write_text("id,split\nm1,train\n")
    with pytest.raises(DataError, match="lacks column"):
        read_ms3(base)


def test_missing_csv(tmp_path):
    with pytest.raises(DataError, match="metadata CSV not found"):
        read_s4(tmp_path)


def test_missing_mask_and_wav(tmp_path):
    base = layouts.write_ms3(tmp_path)
    (base / "ms3_data/gt_masks/val/m3/m3_2.png").unlink()
    (base / "ms3_data/audio_wav/test/m4.wav").unlink()
    problems = {p.video_id: p.problem for p in read_ms3(base).problems}
    assert problems == {"m3": "mask missing", "m4": "audio WAV missing"}


def _s4_record(tmp_path, i=2):
    base = layouts.write_s4(tmp_path)
    return base, read_s4(base).records[i]


def test_load_video_shapes(tmp_path):
    _, rec = _s4_record(tmp_path)
    v = load_video(rec, image_size=64, sample_rate=16000)
    assert v.frames.shape == (5, 3, 64, 64) and v.frames.dtype == np.uint8
    assert v.masks.shape == (5, 32, 32) and set(np.unique(v.masks)) <= {0, 1}
    assert v.audio.shape == (80000,) and v.audio.dtype == np.float32


def test_unreadable_png(tmp_path):
    _, rec = _s4_record(tmp_path)
    rec.frame_paths[1].write_bytes(b"not a png")
    with pytest.raises(DataError, match="unreadable image") as exc:
        load_video(rec, 64, 16000)
    assert exc.value.video_id == "vidC" and "vidC_2.png" in str(exc.value)


def test_mask_of_wrong_size(tmp_path):
    _, rec = _s4_record(tmp_path)
    cv2.imwrite(str(rec.mask_paths[0]), np.zeros((20, 32), np.uint8))
    with pytest.raises(DataError, match="mask is 32x20 but its frame is 32x32"):
        load_video(rec, 64, 16000)


def test_non_binary_mask_is_binarised(tmp_path):
    m = np.array([[0, 1, 128, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert read_mask("v", tmp_path / "m.png", (1, 4)).tolist() == [[0, 1, 1, 1]]


def test_grayscale_and_rgba_frames_become_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((8, 8), 7, np.uint8))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # blue in BGR(A)
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    assert read_frame("v", tmp_path / "g.png").shape == (8, 8, 3)
    a = read_frame("v", tmp_path / "a.png")
    assert a.shape == (8, 8, 3) and a[0, 0].tolist() == [0, 0, 200]


def test_wav_problems(tmp_path):
    p = tmp_path / "a.wav"
    layouts.wav(p, seconds=1.0)
    data = p.read_bytes()
    (tmp_path / "trunc.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 1), np.float32), 16000)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(16000, np.float32), 16000)
    for name, msg in [("trunc", "truncated WAV"), ("empty", "unreadable WAV"), ("zero", "empty WAV"),
                      ("silent", "silent audio")]:
        with pytest.raises(DataError, match=msg) as exc:
            read_audio("vidX", tmp_path / f"{name}.wav", 16000, 5.0)
        assert "vidX" in str(exc.value) and f"{name}.wav" in str(exc.value)


def test_wav_conversions(tmp_path):
    layouts.wav(tmp_path / "st.wav", seconds=5, rate=44100, channels=2)
    x = read_audio("v", tmp_path / "st.wav", 16000, 5.0)
    assert x.shape == (80000,)
    layouts.wav(tmp_path / "short.wav", seconds=2)
    y = read_audio("v", tmp_path / "short.wav", 16000, 5.0)
    assert y.shape == (80000,)
    np.testing.assert_array_equal(y[:32000], y[32000:64000])  # tiled
    sf.write(str(tmp_path / "loud.wav"), np.full(16000, 0.999, np.float32) * np.sign(np.sin(np.arange(16000))),
             16000, subtype="FLOAT")
    assert np.abs(read_audio("v", tmp_path / "loud.wav", 16000, 1.0)).max() <= 1.0


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_resampling_keeps_the_band_and_drops_what_would_alias(tmp_path, rate):
    """A 1 kHz tone keeps its pitch and level at 16 kHz; from 44.1 / 48 kHz, a 10 kHz tone (above
    the new 8 kHz Nyquist, it would fold to 6 kHz) is filtered out, not aliased."""
    t = np.arange(rate * 2) / rate
    for freq, gain_db in [(1000, (-0.2, 0.2)), (10000, (-200, -40))]:
        if freq >= rate / 2:
            continue
        sf.write(str(tmp_path / "tone.wav"), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype="FLOAT")
        x = read_audio("v", tmp_path / "tone.wav", 16000, 2.0)
        assert x.shape == (32000,) and x.dtype == np.float32
        spectrum = np.abs(np.fft.rfft(x[4000:-4000] * np.hanning(24000)))  # edges: the filter's transients
        level_db = 20 * np.log10(spectrum.max() / (0.5 * np.hanning(24000).sum() / 2))
        assert gain_db[0] < level_db < gain_db[1], (freq, level_db)
        if freq < 8000:
            assert abs(np.argmax(spectrum) * 16000 / 24000 - freq) <= 1  # one bin = 0.67 Hz


def test_frame_size_mismatch_within_video(tmp_path):
    _, rec = _s4_record(tmp_path)
    cv2.imwrite(str(rec.frame_paths[3]), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(DataError, match="differs from the video's first frame"):
        load_video(rec, 64, 16000)


def test_fixture_copy_is_independent(tmp_path):
    # the reader accepts the Single-source folder itself, not just its parent
    base = layouts.write_s4(tmp_path / "a")
    shutil.copytree(base, tmp_path / "b")
    assert len(read_s4(tmp_path / "b").records) == 4
