"""Tiny parameter files for running stages in tests."""
from __future__ import annotations

import contextlib
import copy
import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"image_size": 64, "synthetic": {"videos_train": 6, "videos_val": 2, "videos_test": 4,
                                              "frame_size": 64}},
    "audio": {"batch_size": 4},
    "alignment": {"epochs": 1, "batch_size": 4, "dim": 16, "image_size": 64},
    "c2am": {"train": {"epochs": 1, "batch_size": 8}, "cam_epochs": 1},
    "saliency": {"train": {"epochs": 1, "batch_size": 8}},
    "pamr": {"size": 32, "iters": 2},
    "affinity": {"train": {"epochs": 1, "batch_size": 8}, "size": 16, "radius": 3, "dim": 8},
    "seg": {"steps": 4, "val_every": 2, "batch_size": 2, "width": 8, "image_size": 32},
    "eval": {"qualitative_videos": 1},
}

# learning on purpose: enough clips and epochs that tests/test_learning.py can demand margins
LEARNING = {
    "data": {"image_size": 64, "synthetic": {"videos_train": 36, "videos_val": 12, "videos_test": 30,
                                              "frame_size": 64, "max_distractors": 1}},
    # audio_freq_pool 4 (the default 2 halves the audio ResNet's input again): align is 3/4 of this
    # run's time, and 4 cut it from 236 to 140 s on 1 thread with wider margins (test_learning's docstring)
    "alignment": {"epochs": 8, "batch_size": 12, "dim": 32, "image_size": 64, "tau": 0.07, "lr": 1.0e-3,
                  "audio_freq_pool": 4},
    "c2am": {"train": {"epochs": 1, "batch_size": 16}, "cam_epochs": 2},
    "saliency": {"train": {"epochs": 1, "batch_size": 16}},
    "affinity": {"train": {"epochs": 1, "batch_size": 16}},
    # width 16 (the default; TINY's 8 learned its labels only on 2 threads: 0.49 of their val mIoU
    # on 1 thread, 0.60 on 2; with 16, 0.80 and 0.77)
    # no baselines: no test reads them from this run (test_dvc_pipeline's project trains them)
    "seg": {"steps": 150, "val_every": 50, "batch_size": 12, "width": 16, "image_size": 32, "baselines": []},
}


def tree_digest(folder: Path) -> dict[str, str]:
    """md5 of every file under ``folder``, by path relative to it."""
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def write_params(directory: Path, override: dict | None = None) -> Path:
    """params.yaml = the repo's params with TINY and ``override`` applied."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params = merge(merge(params, TINY), override or {})
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@contextlib.contextmanager
def one_torch_thread():
    """torch on one thread inside the block: what a tiny training run learns depends on the float
    path, and ``learned_run`` (conftest.py) trains on one thread however pytest was started."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_tiny_dag(root: Path, override: dict | None = None) -> Path:
    """Every stage in DAG order, in the current directory (``root``), without DVC."""
    from stages import (affinity, align, c2am, crf, evaluate, pamr, prepare, saliency, spectrograms,
                        synthesize, train_seg)
    params = write_params(root, override)
    for stage in (synthesize, prepare, spectrograms, align, c2am, saliency, pamr, affinity, crf, train_seg, evaluate):
        if stage.main(["--params", str(params)]) != 0:
            raise RuntimeError(f"{stage.__name__} failed in {root}")
    return params
