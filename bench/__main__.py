"""Run every benchmark and print markdown. Usage: ``python -m bench [--quick]``."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench import align_regions, explorer, hdf5_filters, map_scales, pamr_inputs, pipeline, retrieval_ceiling, robustness, seg_inputs, val_scoring, walk_grid
from avs_core.store import atomic_write_json
from bench.reference_impls import pamr_per_dilation, spectrogram_scipy


def timeit(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, torch {torch.__version__}, {torch.get_num_threads()} threads"


def bench_refine(quick: bool) -> list[str]:
    from avs_core.models.segmentation import TPAVI, tpavi_dense
    from avs_core.refine.pamr import pamr
    from avs_core.refine.random_walk import random_walk, random_walk_dense
    from avs_core.refine.crf import CRFSettings, crf_batch

    rows = ["| operation | inputs | this project | reference form | ratio |", "|---|---|---|---|---|"]
    g = torch.Generator().manual_seed(0)
    n = 16 if quick else 64
    img, m = torch.rand(n, 3, 64, 64, generator=g), torch.rand(n, 2, 64, 64, generator=g)
    a = timeit(lambda: pamr(img, m, 10, (1, 2, 4, 8, 12, 24)))
    b = timeit(lambda: pamr_per_dilation(img, m, 10, (1, 2, 4, 8, 12, 24)))
    diff = (pamr(img, m) - pamr_per_dilation(img, m, 10, (1, 2, 4, 8, 12, 24))).abs().max().item()
    rows.append(f"| PAMR (10 it, 6 dilations) | {n} frames 64x64 | {n / a:.1f} frames/s (padded slices) | {n / b:.1f} frames/s (per-dilation conv loop) | {b / a:.2f}x (max diff {diff:.1e}) |")
    k = 8 if quick else 32
    maps, feats = torch.rand(k, 1, 32, 32, generator=g), torch.randn(k, 64, 32, 32, generator=g) * 0.1
    a = timeit(lambda: random_walk(maps, feats, 7, 10.0, 8), 2)
    b = timeit(lambda: random_walk_dense(maps, feats, 7, 10.0, 8), 2)
    diff = (random_walk(maps, feats, 7, 10.0, 8) - random_walk_dense(maps, feats, 7, 10.0, 8)).abs().max().item()
    rows.append(f"| random walk (r=7, beta=10, t=8) | {k} maps 32x32, 64-d features | {k / a:.1f} frames/s | {k / b:.1f} frames/s (dense HWxHW matrix power) | {b / a:.2f}x (max diff {diff:.1e}) |")
    c = 32 if quick else 128
    images = (np.random.default_rng(0).random((c, 128, 128, 3)) * 255).astype(np.uint8)
    probs = np.random.default_rng(1).random((c, 128, 128)).astype(np.float32)
    s = CRFSettings()
    a = timeit(lambda: crf_batch(images, probs, s, workers=0), 2)
    b = timeit(lambda: crf_batch(images, probs, s, workers=1), 2)
    rows.append(f"| dense CRF (10 it) | {c} frames 128x128 | {c / a:.1f} frames/s ({os.cpu_count()} processes) | {c / b:.1f} frames/s (1 process) | {b / a:.2f}x |")
    v = 32 if quick else 128
    waves = np.random.default_rng(2).uniform(-0.5, 0.5, (v, 80000)).astype(np.float32)
    from avs_core.audio import log_spectrogram
    a = timeit(lambda: log_spectrogram(waves, 16000))
    b = timeit(lambda: [spectrogram_scipy(w.astype(np.float64), 16000) for w in waves])
    rows.append(f"| log spectrogram (5 s, 16 kHz) | {v} clips | {v / a:.0f} clips/s (float32 numpy, one clip at a time) | {v / b:.0f} clips/s (per-file scipy) | {b / a:.2f}x |")
    t = TPAVI(64, 5).eval()
    torch.nn.init.normal_(t.w_z[1].weight)
    x, au = torch.randn(10, 64, 28, 28, generator=g), torch.randn(10, 64, generator=g)
    with torch.no_grad():
        a = timeit(lambda: t(x, au))
        b = timeit(lambda: tpavi_dense(t, x, au))
        diff = (t(x, au) - tpavi_dense(t, x, au)).abs().max().item()
    rows.append(f"| TPAVI | 2 videos x 5 frames, 64 ch, 28x28 | {a * 1000:.1f} ms | {b * 1000:.1f} ms (materialised 3920x3920 attention) | {b / a:.1f}x (max diff {diff:.1e}) |")
    return rows


TEN_X_OVERRIDE = {  # 10x the data; one epoch per training stage and no baselines keep it near 20 min on 2 cores
    "alignment": {"epochs": 1}, "c2am": {"train": {"epochs": 1}}, "saliency": {"train": {"epochs": 1}},
    "affinity": {"train": {"epochs": 1}}, "seg": {"steps": 100, "baselines": []},
}
PARTS = ("ops", "x1", "x1-epoch1", "x10", "avsbench", "avsbench-train-seg", "avsbench-dag", "noop", "noop-dag", "val-scoring", "evaluate", "explorer", "robustness", "map-scales", "pamr-inputs", "walk-grid", "retrieval-ceiling", "align-regions", "seg-inputs", "seg-seeds", "hdf5-filters")


def run_log(part: str) -> Path:
    """Where a long part's ``dvc repro`` output is kept (a run stopped after hours keeps its stage lines)."""
    return Path(tempfile.gettempdir()) / f"avs-bench-{part}.log"


def print_pipeline(title: str, run: dict, note: str) -> None:
    print(f"\n### {title}\n\n{note}\n")
    resumed = f" over {run['attempts']} attempts (`--project`)" if run.get("attempts", 1) > 1 else ""
    print(f"{run['videos']} videos ({run['videos'] * 5} frames). Cold `dvc repro`{resumed}: **{run['cold_s']:.1f} s**; "
          f"no-op `dvc repro` right after: **{run['noop_s']:.2f} s**"
          + (f" (it re-ran {run['noop_reran']}: not a no-op).\n" if run.get("noop_reran") else " (only the always-run `manifest`).\n"))
    print("\n".join(pipeline.stage_table(run)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Every benchmark, printed as markdown.")
    ap.add_argument("--quick", action="store_true", help="smaller operator inputs (a smoke run, not for the docs)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--runs", default="", help="robustness only: the (style/subset) runs, e.g. "
                    "'textured/s4,flat/ms3' (default: every style with every subset)")
    ap.add_argument("--draws", type=int, default=1, help="robustness only: run each (style/subset) this many "
                    "times, every seed param offset by 0..N-1 (another dataset and weights each), and add a table "
                    "of the spread over draws")
    ap.add_argument("--fusions", default=",".join(robustness.FUSIONS),
                    help="robustness only: the pamr.fusion values re-run after each default run, except "
                         "the one the default (val) chose "
                         f"(comma-separated; '' for none; default {','.join(robustness.FUSIONS)})")
    ap.add_argument("--seg-modes", default="full,pseudo", help="seg-inputs only: the supervisions whose rows run "
                    "(comma-separated; default full,pseudo)")
    ap.add_argument("--project", type=Path, help="avsbench-dag only: run in this kept folder instead of a temporary "
                    "one; the same command again resumes a run that was stopped (hours at AVSBench size)")
    args = ap.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    torch.manual_seed(0)
    raw = {"machine": machine(), "command": " ".join(["python -m bench", *(argv or sys.argv[1:])])}
    print(f"Machine: {raw['machine']}\n\nCommand: `{raw['command']}`")
    if "ops" in parts:
        print("\n### Operators, side by side on the same inputs\n")
        print("\n".join(bench_refine(args.quick)))
    if "x1" in parts:
        raw["x1"] = pipeline.pipeline_run(1)
        print_pipeline("Whole pipeline, default size and params", raw["x1"], "Fresh git + DVC project, `dvc repro`.")
    if "x1-epoch1" in parts:
        raw["x1_epoch1"] = pipeline.pipeline_run(1, TEN_X_OVERRIDE, log=run_log("x1-epoch1"))
        print_pipeline("Default size, one epoch per training stage", raw["x1_epoch1"],
                       f"The 10x run's settings at 1x, to compare like with like: `{TEN_X_OVERRIDE}`.")
    if "x10" in parts:
        raw["x10"] = pipeline.pipeline_run(10, TEN_X_OVERRIDE, log=run_log("x10"))
        print_pipeline("10x the default size", raw["x10"], f"Overrides: `{TEN_X_OVERRIDE}`.")
    if "avsbench" in parts:
        raw["avsbench"] = run = pipeline.avsbench_scale_run()
        print(f"\n### AVSBench S4 size: {run['videos']} videos, {run['frames']} frames\n")
        print(f"Non-training stages, each its own process; stand-in upstream maps for pamr / crf. "
              f"Disk used: {run['disk_gib']:.1f} GiB.\n")
        print("\n".join(pipeline.stage_table(run)))
    if "avsbench-train-seg" in parts:  # in a project after `dvc repro align` (its align model)
        raw["avsbench_train_seg"] = run = pipeline.avsbench_train_seg_run(TEN_X_OVERRIDE["seg"])
        print(f"\n### `train_seg` at AVSBench S4 size: {run['videos']} videos, {run['frames']} frames\n")
        print(f"Stand-in coarse maps and CRF masks, this project's align model, seg overrides `{run['seg']}`.\n")
        print("\n".join(pipeline.stage_table(run)))
    if "avsbench-dag" in parts:  # every stage at AVSBench S4 size, the 10x run's budget: over 2 h on 2 cores (never completed here; docs/BENCHMARKS.md, session 7)
        raw["avsbench_dag"] = pipeline.pipeline_run(1, TEN_X_OVERRIDE, counts=pipeline.AVSBENCH_S4, log=run_log("avsbench-dag"),
                                                    project=args.project)
        print_pipeline("Every stage at AVSBench S4 size", raw["avsbench_dag"], f"Overrides: `{TEN_X_OVERRIDE}`.")
        scaled = {k: raw[r] for k, r in (("1x", "x1_epoch1"), ("10x", "x10"), ("AVSBench", "avsbench_dag")) if r in raw}
        if len(scaled) > 1:
            print("\n### 1x / 10x / AVSBench S4, same budget\n")
            print("\n".join(pipeline.scale_table(scaled)))
    if "noop" in parts:
        raw["noop"] = runs = [pipeline.noop_run({k: v * m for k, v in pipeline.DEFAULT_VIDEOS.items()})
                              for m in (1, 10)] + [pipeline.noop_run(pipeline.AVSBENCH_S4)]
        print("\n### No-op `dvc repro prepare` on a dataset folder (`data.source=avsbench`), median of 3\n")
        print("| videos (files) | prepare depends on `manifest` (this project) | on the folder itself | "
              "`manifest` stage alone |\n|---|---|---|---|")
        for r in runs:
            print(f"| {r['videos']} ({r['files']}) | {r['manifest']['noop_s']:.2f} s | {r['folder']['noop_s']:.2f} s | "
                  f"{r['manifest_stage_s']:.2f} s |")
    if "noop-dag" in parts:  # on the project in the current directory (after `dvc repro`)
        raw["noop_dag"] = run = pipeline.noop_dag_run(pipeline.AVSBENCH_S4)
        print(f"\n### No-op `dvc repro` of the whole DAG, a dataset folder of {run['videos']} videos ({run['files']} files)\n")
        print("Each run ran only the always-changed `manifest`; the DAG's outputs are those of the project's own "
              f"`dvc repro` (`{run['project']}`).\n")
        print("| dataset folder | no-op `dvc repro`, each run |\n|---|---|")
        for variant in pipeline.NOOP_PLACES:
            place = ("the pipeline's own synthetic output (`data.source=synthetic`)" if variant == "synthetic" else
                     "outside the project" if variant == "outside" else f"inside the project, {variant.split(', ', 1)[1]}")
            print(f"| {place} | " + ", ".join(f"{s:.2f} s" for s in run[variant]) + " |")
    if "val-scoring" in parts:
        raw["val_scoring"] = runs = val_scoring.run()
        print(f"\n### `train_seg`'s validation scoring at AVSBench S4 val size\n\n{val_scoring.__doc__.split(chr(10) * 2)[1]}\n")
        print("\n".join(val_scoring.table(runs)))
    if "evaluate" in parts:
        raw["evaluate"] = runs = [pipeline.evaluate_memory_run(v) for v in (16, 160)]
        print("\n### `evaluate` memory against the test-split size (stand-in maps for all 14 scored outputs)\n")
        print("| test videos | work time | peak RSS |\n|---|---|---|")
        for r in runs:
            print(f"| {r['test_videos']} | {r['work_s']:.1f} s | {r['peak_rss_mib']} MiB |")
    if "explorer" in parts:
        raw["explorer"] = run = explorer.run()
        print(f"\n### The pseudo-mask explorer at AVSBench S4 test size\n\n{explorer.__doc__.split(chr(10) * 2)[1]}\n")
        print("\n".join(explorer.table(run)))
    if "robustness" in parts:
        fusions = tuple(f for f in args.fusions.split(",") if f)
        chosen = [tuple(r.split("/")) for r in args.runs.split(",") if r] or \
            [(style, subset) for subset in robustness.SUBSETS for style in robustness.STYLES]
        bad = [r for r in chosen if len(r) != 2 or r[0] not in robustness.STYLES or r[1] not in robustness.SUBSETS]
        if bad:
            ap.error(f"--runs: unknown {', '.join('/'.join(r) for r in bad)}; styles {robustness.STYLES}, subsets {robustness.SUBSETS}")
        if args.draws < 1:
            ap.error("--draws must be >= 1")
        raw["robustness"] = runs = []
        for draw in range(args.draws):
            for style, subset in chosen:
                runs.append(robustness.run_one(style, subset, fusions, draw))
                if args.json:  # each run takes a quarter of an hour: a stopped sweep keeps the runs it finished
                    atomic_write_json(args.json, raw)
        print("\n### Robustness: default params on every synthetic style, S4 and MS3 (test split)\n")
        rows = [robustness.row(r) for r in runs]
        print("\n".join(robustness.table(rows)))
        if args.draws > 1:
            print("\n### Robustness over draws (every seed offset by 0..N-1)\n")
            print("\n".join(robustness.spread_table(rows)))
        if fusions:
            print("\n### pamr.fusion: the default (val, its choice in brackets) against the others at every later step "
                  "(test split)\n")
            print("\n".join(robustness.fusion_table(runs)))
    if "map-scales" in parts:  # on the project in the current directory (after `dvc repro align`)
        raw["map_scales"] = result = map_scales.run()
        print("\n### Which scales make the coarse map (this project's align model)\n")
        print("\n".join(map_scales.table(result)))
    if "pamr-inputs" in parts:  # on the project in the current directory (after `dvc repro align`)
        raw["pamr_inputs"] = result = pamr_inputs.run()
        print("\n### How the coarse map is handed to PAMR: pamr.power and pamr.iters (annotated frames)\n")
        print("\n".join(pamr_inputs.table([result])))
    if "walk-grid" in parts:  # on the project in the current directory (after `dvc repro affinity`)
        raw["walk_grid"] = result = walk_grid.run()
        print("\n### What the random walk's grid costs (annotated frames, stored maps)\n")
        print("\n".join(walk_grid.table([result])))
    if "retrieval-ceiling" in parts:  # on the project in the current directory (after `dvc repro align`)
        raw["retrieval_ceiling"] = result = retrieval_ceiling.run()
        print("\n### How high image retrieval can go, and this project's align model (val split)\n")
        print("\n".join(retrieval_ceiling.table([result])))
    if "align-regions" in parts:  # on the project in the current directory (after `dvc repro align`)
        raw["align_regions"] = result = align_regions.run()
        print(f"\n### Sounding object or remembered video?\n\n{align_regions.__doc__.split(chr(10) * 2)[1]}\n")
        print("\n".join(align_regions.table([result])))
    if "seg-inputs" in parts:  # on the project in the current directory (after `dvc repro crf`)
        modes = set(args.seg_modes.split(","))
        raw["seg_inputs"] = result = seg_inputs.run(tuple(r for r in seg_inputs.ROWS if r[0] in modes))
        print("\n### The segmentation network's inputs, one model per row\n")
        print("\n".join(seg_inputs.table(result)))
    if "seg-seeds" in parts:  # on the project in the current directory (after `dvc repro crf`)
        raw["seg_seeds"] = result = seg_inputs.seeds()
        print("\n### The segmentation stage's recipe over seeds\n")
        print("\n".join(seg_inputs.seeds_table(result)))
    if "hdf5-filters" in parts:  # on the project in the current directory (after `dvc repro prepare`)
        raw["hdf5_filters"] = result = hdf5_filters.run()
        print("\n### What the HDF5 filter costs: the prepared train frames, written and read whole\n")
        print("\n".join(hdf5_filters.table(result)))
    if args.json:
        atomic_write_json(args.json, raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
