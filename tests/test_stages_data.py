"""synthesize -> prepare -> spectrograms, run through their entry points on tiny data."""
import hashlib
import json
import logging
import subprocess
from pathlib import Path

import numpy as np

from avs_core.config import DIAGNOSTICS_DIR
from avs_core.store import read_strings
from stages import prepare, spectrograms, synthesize
from tests import layouts
from tests.helpers import write_params

import h5py


DIAGNOSTICS = Path("data/avsbench_synthetic") / DIAGNOSTICS_DIR


def md5s(folder: Path) -> dict:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.h5"))}


def run_all():
    for stage in (synthesize, prepare, spectrograms):
        assert stage.main(["--params", "params.yaml"]) == 0


def test_pipeline_head_schema_and_determinism(workdir):
    write_params(workdir)
    run_all()
    with h5py.File("data/prepared/train.h5", "r") as f:
        assert f["frames"].shape == (6, 5, 3, 64, 64) and f["frames"].dtype == np.uint8
        assert f["masks"].shape == (6, 5, 64, 64)
        assert f["annotated"][:].sum(axis=1).tolist() == [1] * 6  # S4 train: frame 1 only
        assert f["audio"].shape == (6, 80000)
        assert f.attrs["subset"] == "s4" and f.attrs["image_size"] == 64
        assert list(f.attrs["mask_size"]) == [64, 64]
        ids = read_strings(f["ids"])
        assert len(set(ids)) == 6
        assert (f["labels"][:] >= 0).all()
    with h5py.File("data/prepared/test.h5", "r") as f:
        assert f["annotated"][:].all()
        assert f["masks"][:].max() == 1
    with h5py.File("data/spectrograms/val.h5", "r") as f:
        assert f["logspec_centre"].shape == (2, 1, 257, 200)
        assert f["logspec_frames"].shape == (2, 5, 1, 257, 66)
        assert np.isfinite(f["logspec_clip"][:]).all()
    with h5py.File("data/prepared/test.h5", "r") as f, h5py.File(DIAGNOSTICS / "test.h5", "r") as d:
        where = {v: i for i, v in enumerate(read_strings(d["ids"]))}
        assert d["objects"].shape == (4, 5, 64, 64) and set(where) == set(read_strings(f["ids"]))
        objects = d["objects"][:][[where[v] for v in read_strings(f["ids"])]]
        assert (f["masks"][:] <= objects).all() and objects.sum() > f["masks"][:].sum()  # sounding object + silent ones
    report = json.loads(Path("reports/prepare/report.json").read_text())
    assert report["splits"]["train"] == {"videos": 6, "skipped": 0}
    folders = (Path("data/prepared"), Path("data/spectrograms"), DIAGNOSTICS)
    first = [md5s(f) for f in folders]
    run_all()
    assert [md5s(f) for f in folders] == first


def test_ms3_variant(workdir):
    write_params(workdir, {"data": {"subset": "ms3"}})
    run_all()
    with h5py.File("data/prepared/train.h5", "r") as f:
        assert f["annotated"][:].all()  # MS3 annotates every frame
        assert (f["labels"][:] == -1).all()


def _real_layout_params(workdir, **data):
    layouts.write_s4(workdir / "avsbench_data")
    write_params(workdir, {"data": {"source": "avsbench", "root": "avsbench_data", "image_size": 32, **data},
                           "alignment": {"image_size": 32}})


def test_avsbench_source_reads_official_layout(workdir):
    _real_layout_params(workdir)
    assert prepare.main([]) == 0
    with h5py.File("data/prepared/train.h5", "r") as f:
        assert read_strings(f["ids"]) == ["vidA", "vidB"]
        assert read_strings(f["categories"]) == ["dog", "cat"]
        assert list(f.attrs["category_names"]) == ["cat", "dog"]


def test_bad_input_fails_clearly_and_writes_nothing(workdir, caplog):
    _real_layout_params(workdir)
    Path("avsbench_data/Single-source/s4_data/audio_wav/val/dog/vidC.wav").write_bytes(b"RIFF0000WAVE")
    with caplog.at_level(logging.ERROR):
        assert prepare.main([]) == 2
    assert "vidC" in caplog.text and "vidC.wav" in caplog.text and "data.on_error=skip" in caplog.text
    assert not Path("data/prepared").exists()
    assert [p.name for p in Path("data").iterdir()] == []


def test_skip_lists_bad_items_in_report(workdir):
    _real_layout_params(workdir, on_error="skip")
    Path("avsbench_data/Single-source/s4_data/visual_frames/train/cat/vidB/vidB_2.png").write_bytes(b"x")
    assert prepare.main([]) == 0
    report = json.loads(Path("reports/prepare/report.json").read_text())
    assert [s["video_id"] for s in report["skipped"]] == ["vidB"]
    assert report["splits"]["train"] == {"videos": 1, "skipped": 1}
    with h5py.File("data/prepared/train.h5", "r") as f:
        assert read_strings(f["ids"]) == ["vidA"]  # nothing substituted


def test_bad_params_fail_before_work(workdir, caplog):
    write_params(workdir, {"audio": {"center_seconds": -1}})
    with caplog.at_level(logging.ERROR):
        assert synthesize.main([]) == 2
    assert "'audio.center_seconds'" in caplog.text
    assert not Path("data").exists()


def test_manifest_sees_every_change_to_the_dataset_folder(workdir):
    from stages import manifest

    write_params(workdir)
    assert synthesize.main(["--params", "params.yaml"]) == 0
    assert manifest.main(["--params", "params.yaml"]) == 0
    out = Path("data/manifest.tsv")
    first = out.read_text()
    pngs = sorted(Path("data/avsbench_synthetic").rglob("*.png"))
    assert len(first.splitlines()) == len(list(Path("data/avsbench_synthetic").rglob("*.*"))) and len(pngs) > 0
    assert manifest.main(["--params", "params.yaml"]) == 0 and out.read_text() == first  # unchanged folder
    png = pngs[0]
    png.write_bytes(png.read_bytes() + b"\0")  # rewritten: size and mtime change
    assert manifest.main(["--params", "params.yaml"]) == 0
    changed = out.read_text()
    assert changed != first and sum(a != b for a, b in zip(first.splitlines(), changed.splitlines())) == 1
    (png.parent / "extra.png").write_bytes(b"x")  # an added file
    assert manifest.main(["--params", "params.yaml"]) == 0 and len(out.read_text().splitlines()) == len(first.splitlines()) + 1


def test_manifest_and_synthesize_with_a_real_dataset_folder(workdir, caplog):
    from stages import manifest

    write_params(workdir, {"data": {"source": "avsbench", "root": "absent"}})
    assert synthesize.main(["--params", "params.yaml"]) == 0  # nothing to generate: a note only
    assert [p.name for p in Path("data/avsbench_synthetic").iterdir()] == ["ABOUT.txt"]
    with caplog.at_level(logging.ERROR):
        assert manifest.main(["--params", "params.yaml"]) == 2
    assert "absent does not exist" in caplog.text and "data.root" in caplog.text
    assert not Path("data/manifest.tsv").exists()


def test_a_dataset_folder_inside_the_project_asks_for_dvcignore(tmp_path):
    from avs_core.pipeline.manifest import dvcignore_hint

    (tmp_path / "proj" / "userdata" / "AVSBench").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    proj = tmp_path / "proj"
    assert dvcignore_hint(tmp_path / "outside", proj) is None  # DVC never walks it
    hint = dvcignore_hint(proj / "userdata" / "AVSBench", proj)
    assert hint and "'/userdata/AVSBench/' to .dvcignore" in hint
    (proj / ".dvcignore").write_text("# dataset\n/other/\n")
    assert dvcignore_hint(proj / "userdata" / "AVSBench", proj) is not None
    (proj / ".dvcignore").write_text("# dataset\n/userdata/\n")  # a folder above it counts
    assert dvcignore_hint(proj / "userdata" / "AVSBench", proj) is None
    (proj / ".dvcignore").unlink()
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    assert dvcignore_hint(proj / "userdata" / "AVSBench", proj) is not None  # untracked, not ignored
    (proj / ".gitignore").write_text("/userdata/\n")  # git-ignored folders DVC skips as well
    assert dvcignore_hint(proj / "userdata" / "AVSBench", proj) is None


def _tree_md5s(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_bytes_do_not_depend_on_the_cpus_simd(tmp_path):
    """The embedded dataset is the same on every CPU: ``generate`` writes the same bytes with
    OpenCV's optimised (SIMD-dispatched) kernels on and off. ``cv2.resize`` on float input did
    not: its AVX2 path changed ``textured``'s backgrounds in the last bits (session 34)."""
    import cv2

    from avs_core.config import SyntheticParams
    from avs_core.pipeline.synthesize import generate

    was = cv2.useOptimized()
    try:
        for style in ("shapes", "textured", "flat"):
            p = SyntheticParams(style=style, videos_train=2, videos_val=1, videos_test=1, frame_size=96, seconds=2)
            trees = []
            for optimised in (True, False):
                cv2.setUseOptimized(optimised)
                out = tmp_path / f"{style}-{optimised}"
                generate(out, "s4", p)
                trees.append(_tree_md5s(out))
            assert trees[0] == trees[1], f"{style}: files differ: {[k for k in trees[0] if trees[0][k] != trees[1].get(k)]}"
    finally:
        cv2.setUseOptimized(was)
