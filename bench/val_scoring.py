"""Peak memory of ``train_seg``'s validation scoring at AVSBench S4 val size.

The default ``unet`` network, untrained, predicts a val split of random frames (740 videos x 5,
every frame annotated, ``data.image_size`` frames, masks at AVSBench's 224 px); the scores mean
nothing, the memory is the stage's. Each variant runs in its own process: its RSS before the call
(the split, the masks, the network) and its peak RSS during it (``ru_maxrss``).
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MASK_SIZE = 224  # AVSBench's ground-truth masks


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class _MapsStandIn:
    """Random input maps made per batch, as ``InputMaps`` reads them per batch from HDF5."""

    def __init__(self, size: int):
        self.size = size

    def __getitem__(self, index):
        import numpy as np

        vids, _ = index
        return np.random.default_rng(len(vids)).random((len(vids), self.size, self.size), dtype=np.float32)


def measure(variant: str, videos: int) -> dict:
    """One variant in this process: ``blockwise`` (the stage's) or ``whole-split`` (before)."""
    import numpy as np
    import torch
    import yaml

    from avs_core.config import params_from_dict
    from avs_core.data.splits import SplitArrays
    from avs_core.pipeline.train_seg import SegData, build_model, val_miou
    from bench.reference_impls import val_miou_whole_split

    params = params_from_dict(yaml.safe_load((REPO / "params.yaml").read_text()))
    rng = np.random.default_rng(0)
    size, t = params.data.image_size, 5
    split = SplitArrays(ids=[f"v{i}" for i in range(videos)], labels=np.zeros(videos, dtype=np.int64),
                        frames=rng.integers(0, 256, (videos, t, 3, size, size), dtype=np.uint8),
                        annotated=np.ones((videos, t), dtype=bool), audio=np.zeros((videos, t, 1, 1, 1), np.float32),
                        category_names=["a"])
    masks = rng.integers(0, 2, (videos, t, MASK_SIZE, MASK_SIZE), dtype=np.uint8)  # no float temporary: ru_maxrss
    audio = rng.standard_normal((videos, t, params.alignment.dim)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(params.seg, params.alignment, t, None)
    data = SegData(split, params.seg, audio, None if params.seg.map_input == "none" else _MapsStandIn(size))
    before = _rss_mib()
    start = time.perf_counter()
    score = (val_miou if variant == "blockwise" else val_miou_whole_split)(model, data, masks)
    return {"variant": variant, "videos": videos, "rss_before_mib": before, "seconds": time.perf_counter() - start,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "score": score}


def run(videos: int = 740) -> list[dict]:
    out = []
    for variant in ("whole-split", "blockwise"):
        code = f"import json, sys; from bench.val_scoring import measure; print(json.dumps(measure({variant!r}, {videos})))"
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"val-scoring {variant} failed:\n{done.stderr[-3000:]}")
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def table(runs: list[dict]) -> list[str]:
    rows = ["| validation scoring | RSS before | peak RSS during | time | val mIoU (random) |", "|---|---|---|---|---|"]
    for r in runs:
        rows.append(f"| {r['variant']} | {r['rss_before_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB | {r['seconds']:.1f} s | {r['score']:.4f} |")
    return rows
