"""The explorer (``avs inspect``) at AVSBench S4 test size: 740 videos x 5 frames.

The dataset is the embedded generator's (frames and masks at 224 px, prepared as usual); every map
the explorer shows is a stand-in of its stage's native size (smooth random fields, binary where
the stage writes masks), since training the whole pipeline at that size is not the point here.
Measured: the explorer's wall time and peak RSS (its own process), the folder's size and file
count, and, where Chromium and playwright are installed, how long the page takes to show the video
list and to open one video with all its images.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from avs_core.explore.scores import STAGES
from bench.pipeline import FRAMES_PER_VIDEO, _env, _params, _timed, write_stand_in_maps

AVSBENCH_S4_TEST = 740
MEASURED = ("import resource, sys; from avs_core.inspect import main; rc = main(sys.argv[1:]); "
            "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
# file -> {dataset: (native size, binary)}, the sizes the default params give
STAND_INS = {
    "data/align": {"fused": (128, False), "fused_shuffled": (128, False)},
    "data/pseudo/c2am": {"c2am": (32, False), "cam": (32, False)},
    "data/pseudo/saliency": {"saliency": (32, False), "eq6": (32, True)},
    "data/pseudo/pamr": {"fused": (64, False), "pamr": (64, False)},
    "data/pseudo/affinity": {"walk": (32, False)},
    "data/pseudo/crf": {"mask": (128, True)},
    "data/seg/pseudo": {"prob": (64, False)},
    "data/seg/none": {"prob": (64, False)},
    "data/seg/full": {"prob": (64, False)},
}


def _write_maps(root: Path, split: str) -> None:
    from avs_core.store import create_h5, open_h5, read_strings, write_strings

    with open_h5(root / "data/prepared" / f"{split}.h5") as f:
        ids = read_strings(f["ids"])
    rng = np.random.default_rng(0)
    for rel, keys in STAND_INS.items():
        with create_h5(root / rel / f"{split}.h5", stage=rel, split=split, stand_in="bench") as fh:
            write_strings(fh, "ids", ids)
            for key, (size, binary) in keys.items():
                write_stand_in_maps(fh, key, len(ids), size, binary, rng)


def _page_times(index: Path) -> dict | None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(chromium).exists():
        return None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        t = time.perf_counter()
        page.goto(index.as_uri())
        page.wait_for_selector("#videos tr.video-row")
        list_s = time.perf_counter() - t
        t = time.perf_counter()
        page.click(f"th[data-key='s{[m.name for m in STAGES].index('crf')}r0']")  # sort all videos by the CRF's IoU
        sort_s = time.perf_counter() - t
        t = time.perf_counter()
        page.click("#videos tr.video-row a[data-video]")
        page.wait_for_load_state("networkidle")
        video_s = time.perf_counter() - t
        t = time.perf_counter()
        page.click("button[data-view='worst']")
        page.wait_for_selector("#failures")
        worst_s = time.perf_counter() - t
        browser.close()
    return {"list_s": list_s, "sort_s": sort_s, "video_s": video_s, "worst_s": worst_s}


def run(test_videos: int = AVSBENCH_S4_TEST, keep: Path | None = None) -> dict:
    params = _params({"data": {"synthetic": {"videos_train": 32, "videos_val": 2, "videos_test": test_videos}}})
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        root = Path(tmp)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for stage in ("synthesize", "prepare"):
            _timed(f"{sys.executable} -m stages.{stage}", root)
        _write_maps(root, "test")
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", MEASURED, "--splits", "test"], cwd=root, env=_env(),
                              capture_output=True, text=True)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        rss_kib = int(done.stderr.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
        out = root / "reports/inspect/explorer"
        files = [f for f in out.rglob("*") if f.is_file()]
        return {"videos": test_videos, "frames": test_videos * FRAMES_PER_VIDEO, "wall_s": wall,
                "peak_rss_mib": rss_kib / 1024, "files": len(files),
                "mib": sum(f.stat().st_size for f in files) / 2**20,
                "index_mib": (out / "index.html").stat().st_size / 2**20, "page": _page_times(out / "index.html")}


def table(r: dict) -> list[str]:
    page = r["page"]
    shown = (f"list {page['list_s']:.2f} s, sort {page['sort_s']:.2f} s, open a video with its "
             f"{len(STAND_INS) + 4} x 5 maps {page['video_s']:.2f} s, worst steps {page['worst_s']:.2f} s") \
        if page else "not measured (no Chromium / playwright)"
    return ["| videos (frames) | `avs inspect --splits test` wall | peak RSS | folder | files | index.html | headless Chromium |",
            "|---|---|---|---|---|---|---|",
            f"| {r['videos']} ({r['frames']}) | {r['wall_s']:.1f} s | {r['peak_rss_mib']:.0f} MiB | {r['mib']:.1f} MiB | "
            f"{r['files']} | {r['index_mib']:.2f} MiB | {shown} |"]
