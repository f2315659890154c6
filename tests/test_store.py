import hashlib
import os
import signal
import subprocess

import numpy as np
import pytest

from avs_core import __version__
from avs_core.provenance import code_version
from avs_core.store import (COMPRESSION, StoreError, atomic_dir, atomic_write_json, clear_interrupt, create_h5, open_h5,
                            record_interrupt, was_interrupted, write_strings)
from stages._common import run_stage
from tests.helpers import REPO

PARAMS = REPO / "params.yaml"


def write(path, value=1.0):
    with create_h5(path, stage="t", params={"a": 1}, note="x") as fh:
        fh.create_dataset("x", data=np.full((4, 4), value, np.float32), chunks=(1, 4), **COMPRESSION)


def md5(p):
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_same_content_same_bytes(tmp_path):
    write(tmp_path / "a.h5")
    write(tmp_path / "b.h5")
    assert md5(tmp_path / "a.h5") == md5(tmp_path / "b.h5")


def test_self_describing(tmp_path):
    write(tmp_path / "a.h5")
    with open_h5(tmp_path / "a.h5") as fh:
        assert fh.attrs["stage"] == "t" and fh.attrs["params_json"] == '{"a": 1}'
        assert fh.attrs["code_version"] == code_version(stage="t")


def _git_repo(root):
    def git(*args):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    return git


def _head(root) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout


def test_code_version_names_the_last_code_commit_or_dirty(tmp_path):
    git = _git_repo(tmp_path)
    (tmp_path / "avs_core").mkdir()
    (tmp_path / "avs_core" / "m.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "code")
    sha = _head(tmp_path)
    assert code_version.__wrapped__(tmp_path) == f"{__version__}+g{sha[:12]}"
    (tmp_path / "dvc.lock").write_text("results\n")  # a results-only commit keeps the version
    git("add", ".")
    git("commit", "-qm", "results")
    assert code_version.__wrapped__(tmp_path) == f"{__version__}+g{sha[:12]}"
    (tmp_path / "avs_core" / "m.py").write_text("x = 2\n")
    assert code_version.__wrapped__(tmp_path) == f"{__version__}+dirty"
    assert code_version.__wrapped__(tmp_path / "avs_core" / "absent") == __version__  # no checkout there


def test_code_version_of_a_stage_follows_only_its_own_code(tmp_path):
    """A stage's stamp is the last commit that changed its ``dvc.yaml`` code deps: a commit to another
    stage's module leaves it, so a fresh clone's run writes the bytes ``dvc.lock`` recorded for
    every stage that DVC did not re-run."""
    git = _git_repo(tmp_path)
    (tmp_path / "avs_core").mkdir()
    for name in ("shared", "a", "b"):
        (tmp_path / "avs_core" / f"{name}.py").write_text("x = 1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  a:\n    cmd: python -m a\n    deps:\n      - avs_core/shared.py\n      - avs_core/a.py\n      - ${paths.data}\n"
        "  b:\n    cmd: python -m b\n    deps:\n      - avs_core/shared.py\n      - avs_core/b.py\n")
    git("add", ".")
    git("commit", "-qm", "both stages")
    first = _head(tmp_path)
    (tmp_path / "avs_core" / "b.py").write_text("x = 2\n")
    assert code_version.__wrapped__(tmp_path, "a") == f"{__version__}+g{first[:12]}"  # b's edit is not a's
    assert code_version.__wrapped__(tmp_path, "b") == f"{__version__}+dirty"
    git("commit", "-qam", "b only")
    second = _head(tmp_path)
    assert code_version.__wrapped__(tmp_path, "a") == f"{__version__}+g{first[:12]}"
    assert code_version.__wrapped__(tmp_path, "b") == f"{__version__}+g{second[:12]}"
    assert code_version.__wrapped__(tmp_path) == f"{__version__}+g{second[:12]}"  # no stage: all of the code
    assert code_version.__wrapped__(tmp_path, "not_a_stage") == f"{__version__}+g{second[:12]}"
    (tmp_path / "avs_core" / "shared.py").write_text("x = 3\n")
    assert code_version.__wrapped__(tmp_path, "a") == code_version.__wrapped__(tmp_path, "b") == f"{__version__}+dirty"


def test_failure_leaves_nothing(tmp_path):
    write(tmp_path / "a.h5", 1.0)
    before = md5(tmp_path / "a.h5")
    with pytest.raises(RuntimeError):
        with create_h5(tmp_path / "a.h5", stage="t") as fh:
            fh.create_dataset("x", data=np.zeros(3))
            raise RuntimeError("boom")
    assert md5(tmp_path / "a.h5") == before
    with pytest.raises(KeyboardInterrupt):
        with create_h5(tmp_path / "new.h5", stage="t"):
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_atomic_dir(tmp_path):
    with atomic_dir(tmp_path / "out") as d:
        write(d / "one.h5")
    with pytest.raises(ValueError):
        with atomic_dir(tmp_path / "out") as d:
            write(d / "two.h5")
            raise ValueError
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["one.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_open_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_h5(tmp_path / "nope.h5")
    (tmp_path / "bad.h5").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        open_h5(tmp_path / "bad.h5")


def test_unwritable_output_location(tmp_path):
    (tmp_path / "file").write_text("x")  # a file where a directory should be
    with pytest.raises(StoreError, match="cannot create output directory"):
        atomic_write_json(tmp_path / "file" / "sub" / "m.json", {"a": 1})


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno
    import pathlib

    def full(self, *a, **k):
        with open(self, "w") as fh:
            fh.write("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(StoreError, match="No space left"):
        atomic_write_json(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_map_writer_refuses_nan_and_names_the_video(tmp_path):
    from avs_core.data.maps import MapWriter

    with pytest.raises(StoreError, match=r"NaN or inf in 'walk' .* video\(s\) v2"):
        with create_h5(tmp_path / "m.h5", stage="t") as fh:
            writer = MapWriter(fh, ["v0", "v1", "v2", "v3"], "t output m.h5")
            values = np.zeros((2, 5, 4, 4), np.float32)
            writer.add("walk", 0, values)
            values[0, 3, 1, 1] = np.inf
            writer.add("walk", 2, values)
    assert not list(tmp_path.iterdir())


def test_map_chunks_read_the_whole_map_and_check_each_chunk(tmp_path):
    import h5py

    from avs_core.data.maps import map_chunks, read_maps

    maps = np.random.default_rng(0).random((7, 5, 4, 4), dtype=np.float32)
    with create_h5(tmp_path / "m.h5", stage="t") as fh:
        write_strings(fh, "ids", [f"v{i}" for i in range(7)])
        fh.create_dataset("walk", data=maps)
    starts, parts = zip(*map_chunks(tmp_path / "m.h5", "walk", chunk=3))
    assert starts == (0, 3, 6) and [len(p) for p in parts] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(parts), read_maps(tmp_path / "m.h5", "walk"))
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        f["walk"][4, 0, 0, 0] = np.nan
    with pytest.raises(StoreError, match=r"video\(s\) v4"):
        list(map_chunks(tmp_path / "m.h5", "walk", chunk=3))


def test_diverged_loss_stops_training(tmp_path):
    import torch

    from avs_core.config import TrainingParams
    from avs_core.engine.frames import fit
    from avs_core.runtime import DivergedError

    model = torch.nn.Conv2d(3, 1, 1)
    frames = np.zeros((8, 3, 8, 8), np.uint8)
    with pytest.raises(DivergedError, match=r"demo step 1: the loss became nan.*demo.train.lr"):
        fit(model, frames, None, lambda m, x, t: m(x).mean() * float("nan"), TrainingParams(epochs=1, batch_size=4),
            0, "demo", tmp_path)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed interrupt
def test_interrupt_swallowed_by_a_finaliser_keeps_outputs_out(tmp_path, caplog):
    """A SIGINT that lands while Python runs a finaliser raises KeyboardInterrupt there, where it is
    printed and swallowed: the stage runs on. The recorded interrupt must still keep its output out
    of place and make the stage exit 130 (seen once in the fresh-clone suite: pamr exited 0)."""
    class FreedWhenTheSignalLands:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # handled here, inside the finaliser

    def work(params):
        FreedWhenTheSignalLands()  # "Exception ignored in ... __del__": KeyboardInterrupt
        with atomic_dir(tmp_path / "out") as out:
            write(out / "train.h5")

    # a shell's background job (CI, `cmd &`) inherits SIGINT ignored, and run_stage keeps that
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert run_stage("t", work, argv=["--params", str(PARAMS)], uses_torch=False) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not was_interrupted()
    finally:
        signal.signal(signal.SIGINT, before)
    assert list(tmp_path.iterdir()) == []
    assert "interrupted" in caplog.text

    with pytest.raises(KeyboardInterrupt):  # atomic_path alone, after a swallowed interrupt
        record_interrupt(signal.SIGINT, None)
    try:
        with pytest.raises(KeyboardInterrupt):
            with create_h5(tmp_path / "x.h5", stage="t") as fh:
                fh.create_dataset("x", data=np.zeros(3))
        assert list(tmp_path.iterdir()) == []
    finally:
        clear_interrupt()
    write(tmp_path / "x.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_interrupt_recorded_keeps_an_old_output_folder(tmp_path):
    """atomic_dir removes the old folder before the rename: a recorded interrupt must stop it first."""
    old = tmp_path / "out"
    old.mkdir()
    (old / "keep.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        record_interrupt(signal.SIGINT, None)
    try:
        with pytest.raises(KeyboardInterrupt):
            with atomic_dir(old) as out:
                (out / "new.txt").write_text("new")  # a plain file: no atomic_path of its own
    finally:
        clear_interrupt()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in old.iterdir()] == ["keep.txt"]
