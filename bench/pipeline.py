"""Stage-level benchmarks from real runs: per-stage wall time, throughput and peak RSS.

* ``pipeline_run``: the whole DAG through ``dvc repro`` in a fresh git + DVC project (cold), then
  a second ``dvc repro`` (no-op), at a multiple of the embedded dataset's default size.
* ``avsbench_scale_run``: the dataset at AVSBench S4 size (3,452 / 740 / 740 videos, 24,660
  frames) through ``synthesize``, ``prepare``, ``spectrograms`` and the map stages that need no
  trained network (``pamr``, ``crf``). Their upstream maps come from trained stages, so the
  bench writes stand-in maps (smooth random fields, chunk by chunk) in the same files and layout;
  PAMR and CRF cost does not depend on the values.

Per-stage figures are the stages' own ``done in ... s, peak RSS ... MiB`` log lines (work after
imports; peak RSS of the largest process, CRF workers included).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"stages\.(\w+): done in ([\d.]+) s, peak RSS (\d+) MiB")
DEFAULT_VIDEOS = {"videos_train": 96, "videos_val": 16, "videos_test": 16}
AVSBENCH_S4 = {"videos_train": 3452, "videos_val": 740, "videos_test": 740}
FRAMES_PER_VIDEO = 5


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@b"}


def _timed(cmd: str, cwd: Path, log: Path | None = None) -> tuple[float, str]:
    """Run ``cmd`` in ``cwd``; returns (wall seconds, its output). With ``log``, the output goes
    to that file as it comes, so a run that fails or is stopped hours in keeps its stages' lines."""
    t = time.perf_counter()
    if log is None:
        out = subprocess.run(cmd, cwd=cwd, env=_env(), shell=True, capture_output=True, text=True)
        code, text = out.returncode, out.stdout + out.stderr
    else:
        with log.open("w") as fh:
            code = subprocess.run(cmd, cwd=cwd, env=_env(), shell=True, stdout=fh, stderr=subprocess.STDOUT).returncode
        text = log.read_text()
    wall = time.perf_counter() - t
    if code:
        raise RuntimeError(f"{cmd} failed in {cwd}" + (f" (whole log: {log})" if log else "") + f":\n{text[-6000:]}")
    return wall, text


def _stage_stats(log: str, videos: int) -> dict:
    frames = videos * FRAMES_PER_VIDEO
    return {m.group(1): {"work_s": float(m.group(2)), "peak_rss_mib": int(m.group(3)),
                         "frames_per_s": frames / max(float(m.group(2)), 1e-9)} for m in STAGE_LINE.finditer(log)}


def _params(override: dict) -> dict:
    return _merge(yaml.safe_load((REPO / "params.yaml").read_text()), override)


def pipeline_run(scale: int, override: dict | None = None, keep: Path | None = None, collect=None,
                 noop: bool = True, counts: dict | None = None, log: Path | None = None,
                 project: Path | None = None) -> dict:
    """``dvc repro`` cold (and, with ``noop``, again) with ``scale`` x the default video counts (or
    ``counts``) and ``override``; ``collect(root)`` may add what the run wrote to the result
    (``"collected"``). ``log``: where the cold run's output goes as it runs (kept after the run).

    ``project``: a kept folder instead of a temporary one, for runs longer than a sitting. Run the
    same command again and ``dvc repro`` goes on where the last attempt stopped; each attempt's
    output stays in ``project/bench-repro.<n>.log`` and the stage figures come from all of them
    (``cold_s`` is then the sum of the attempts' wall times, ``attempts`` says how many; an attempt
    killed outright, not by Ctrl-C, leaves no wall time). The stage code is the checkout's at the
    first attempt, copied into the project, so a resumed run finishes with the code it began with."""
    counts = counts or {k: v * scale for k, v in DEFAULT_VIDEOS.items()}
    params = _params(_merge({"data": {"synthetic": counts}}, override or {}))
    with contextlib.nullcontext(project) if project else tempfile.TemporaryDirectory(dir=keep) as tmp:
        root = Path(tmp)
        if project and (root / ".dvc").is_dir():
            if yaml.safe_load((root / "params.yaml").read_text()) != params:
                raise RuntimeError(f"{root} holds a run with other params; pass a new --project folder")
            print(f"resuming the run in {root}", file=sys.stderr)
        else:
            _new_project(root, params, hardlink_cache=project is not None)
        if project:
            earlier = sorted(root.glob("bench-repro.*.log"), key=lambda f: int(f.suffixes[0][1:]))
            log = root / f"bench-repro.{len(earlier)}.log"
        if log:
            print(f"dvc repro output: {log}", file=sys.stderr)
        start = time.perf_counter()
        try:
            cold, text = _timed("dvc repro", root, log)
        finally:
            if project:  # every attempt's wall time, also of one that failed or was interrupted (Ctrl-C)
                with (root / "bench-walls.txt").open("a") as fh:
                    fh.write(f"{time.perf_counter() - start:.1f}\n")
        attempts = 1
        if project:
            attempts = len(earlier) + 1
            cold = sum(float(w) for w in (root / "bench-walls.txt").read_text().split())
            text = "".join(f.read_text() for f in [*earlier, log])  # later attempts' lines win
        noop_s = float("nan")
        reran = []
        if noop:
            noop_s, again = _timed("dvc repro", root)
            reran = [s for s in re.findall(r"Running stage '([^']+)'", again) if s != "manifest"]  # manifest always runs
            if reran:
                print(f"no-op dvc repro re-ran {reran}:\n{again}", file=sys.stderr)
        collected = collect(root) if collect else None
    videos = sum(counts.values())
    return {"scale": scale, "videos": videos, "override": override or {}, "cold_s": cold, "noop_s": noop_s,
            "noop_reran": reran, "stages": _stage_stats(text, videos), "collected": collected, "attempts": attempts}


PROJECT_FILES = ("avs_core", "stages", "pyproject.toml", "dvc.yaml", ".gitignore", ".dvcignore")


def _project_tree(root: Path) -> None:
    """A git clone of this checkout in ``root`` with the checkout's working-tree code over it.

    A clone, not a fresh ``git init``: every HDF5 output carries ``code_version``, the commit that
    last changed its stage's code (``avs_core.provenance``). In a clone that commit, or ``+dirty``
    for uncommitted code, is the checkout's, so the bench's outputs are byte for byte those of a
    ``dvc repro`` in the checkout and its ``dvc.lock`` can be committed there."""
    _timed(f"git clone -q {REPO} .", root)
    (root / "dvc.lock").unlink(missing_ok=True)  # the checkout's record: the run writes its own
    for name in PROJECT_FILES:
        src, dst = REPO / name, root / name
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)


def _new_project(root: Path, params: dict, hardlink_cache: bool) -> None:
    """A DVC project in ``root`` with this checkout's stage code (:func:`_project_tree`) and
    ``params``, uncommitted so that the code's stamp stays the checkout's."""
    root.mkdir(parents=True, exist_ok=True)
    _project_tree(root)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # a kept project at AVSBench size: hard links keep DVC's cache from doubling the disk used
    if hardlink_cache:
        _timed("dvc config --local cache.type hardlink,symlink", root)


def _smooth_maps(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``[n, size, size]`` float32 in [0, 1]: random 4x4 fields upsampled bilinearly."""
    import torch
    import torch.nn.functional as F

    coarse = torch.from_numpy(rng.random((n, 1, 4, 4), dtype=np.float32))
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def write_stand_in_maps(fh, key: str, videos: int, size: int, binary: bool, rng: np.random.Generator,
                        signed: bool = False) -> None:
    """Dataset ``key`` [videos, 5, size, size] of smooth random maps in ``fh``, 64 videos at a time
    (bounded memory): uint8 {0, 1} if ``binary``, else float32 in [0, 1] ([-1, 1] if ``signed``)."""
    ds = fh.create_dataset(key, shape=(videos, FRAMES_PER_VIDEO, size, size), dtype="u1" if binary else "f4",
                           chunks=(1, FRAMES_PER_VIDEO, size, size))
    for start in range(0, videos, 64):
        n = min(64, videos - start)
        maps = _smooth_maps(rng, n * FRAMES_PER_VIDEO, size).reshape(n, FRAMES_PER_VIDEO, size, size)
        ds[start:start + n] = (maps > 0.5).astype(np.uint8) if binary else maps * 2 - 1 if signed else maps


def _write_stand_in(root: Path, rel: str, key: str, stage: str, size: int, binary: bool = False) -> None:
    """Map files in the layout of ``stage``'s outputs, written 64 videos at a time (bounded memory)."""
    sys.path.insert(0, str(REPO))
    from avs_core.store import create_h5, open_h5, read_strings, write_strings

    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        with open_h5(root / "data/prepared" / f"{split}.h5") as f:
            ids = read_strings(f["ids"])
        out = root / rel / f"{split}.h5"
        with create_h5(out, stage=stage, split=split, stand_in="bench") as fh:
            write_strings(fh, "ids", ids)
            write_stand_in_maps(fh, key, len(ids), size, binary, rng, signed=True)


def _run_stages(root: Path, stages: tuple[str, ...], videos: int, stats: dict) -> None:
    """Run each stage as its own process in ``root``, adding its figures (and process wall time) to ``stats``."""
    for stage in stages:
        wall, log = _timed(f"{sys.executable} -m stages.{stage}", root)
        stats.update(_stage_stats(log, videos))
        stats[stage]["process_s"] = wall


@contextlib.contextmanager
def _prepared_at_scale(counts: dict, override: dict, keep: Path | None):
    """A temporary project with ``counts`` videos through the real ``synthesize``, ``prepare`` and
    ``spectrograms`` (each its own process) and stand-in ``align`` coarse maps; yields
    ``(root, videos, stats)``, ``stats`` holding those stages' figures."""
    params = _params(_merge({"data": {"synthetic": counts}}, override))
    videos, stats = sum(counts.values()), {}
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        root = Path(tmp)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        _run_stages(root, ("synthesize", "prepare", "spectrograms"), videos, stats)
        _write_stand_in(root, "data/align", "fused", "align", params["data"]["image_size"])
        yield root, videos, stats


def avsbench_scale_run(counts: dict | None = None, keep: Path | None = None) -> dict:
    """The non-training stages at AVSBench S4 size, each as its own process; returns per-stage stats."""
    size = _params({})["data"]["image_size"]
    with _prepared_at_scale(counts or AVSBENCH_S4, {}, keep) as (root, videos, stats):
        _write_stand_in(root, "data/pseudo/saliency", "eq6", "saliency", size, binary=True)
        _run_stages(root, ("pamr",), videos, stats)
        (root / "data/pseudo/affinity").mkdir(parents=True)
        for split in ("train", "val", "test"):  # the PAMR maps stand in for the random walk's
            _copy_dataset(root / "data/pseudo/pamr" / f"{split}.h5", "pamr", root / "data/pseudo/affinity" / f"{split}.h5", "walk")
        _run_stages(root, ("crf",), videos, stats)
        disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {"videos": videos, "frames": videos * FRAMES_PER_VIDEO, "disk_gib": disk / 2**30, "stages": stats}


def avsbench_train_seg_run(seg_override: dict, keep: Path | None = None, counts: dict | None = None) -> dict:
    """``train_seg`` alone at AVSBench S4 size, as its own process, after the real ``synthesize``,
    ``prepare`` and ``spectrograms``; the project's own align model (``models/align.pt`` of the
    current directory, after its ``dvc repro align``: its size does not depend on the data); coarse
    maps and CRF masks as stand-ins (smooth random fields; the stage's memory and time do not depend
    on their values). ``seg_override``: the ``seg`` params (the 10x budget's: 100 steps, no baselines)."""
    model = Path.cwd() / "models" / "align.pt"
    if not model.is_file():
        raise RuntimeError(f"{model} is missing: run `dvc repro align` in this project first")
    size = _params({})["data"]["image_size"]
    with _prepared_at_scale(counts or AVSBENCH_S4, {"seg": seg_override}, keep) as (root, videos, stats):
        _write_stand_in(root, "data/pseudo/crf", "mask", "crf", size, binary=True)
        (root / "models").mkdir()
        shutil.copy(model, root / "models" / "align.pt")
        _run_stages(root, ("train_seg",), videos, stats)
    return {"videos": videos, "frames": videos * FRAMES_PER_VIDEO, "seg": seg_override, "stages": stats}


def _copy_dataset(src: Path, key: str, dst: Path, new_key: str) -> None:
    import h5py

    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        g.create_dataset("ids", data=f["ids"][()], dtype=f["ids"].dtype)
        ds = g.create_dataset(new_key, shape=f[key].shape, dtype=f[key].dtype, chunks=f[key].chunks)
        for start in range(0, f[key].shape[0], 64):
            ds[start:start + 64] = f[key][start:start + 64]


def scale_table(runs: dict[str, dict]) -> list[str]:
    """One row per stage, work time / frames/s / peak RSS per run (``{label: pipeline_run result}``),
    and the peak RSS ratio of the last run to the one before it."""
    labels = list(runs)
    head = "| stage | " + " | ".join(f"{k}: work time, frames/s, peak RSS" for k in labels)
    rows = [head + f" | peak RSS {labels[-1]} / {labels[-2]} |" if len(labels) > 1 else head + " |",
            "|---|" + "---|" * (len(labels) + (len(labels) > 1))]
    for stage in runs[labels[-1]]["stages"]:
        cells = []
        for k in labels:
            s = runs[k]["stages"].get(stage)
            cells.append(f"{s['work_s']:.1f} s, {s['frames_per_s']:.1f}, {s['peak_rss_mib']} MiB" if s else "n/a")
        row = f"| {stage} | " + " | ".join(cells)
        if len(labels) > 1:
            a, b = runs[labels[-2]]["stages"].get(stage), runs[labels[-1]]["stages"].get(stage)
            row += f" | {b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x" if a and b else " | n/a"
        rows.append(row + " |")
    return rows


def stage_table(run: dict) -> list[str]:
    rows = ["| stage | work time | frames/s | peak RSS |", "|---|---|---|---|"]
    for name, s in run["stages"].items():
        rows.append(f"| {name} | {s['work_s']:.1f} s | {s['frames_per_s']:.1f} | {s['peak_rss_mib']} MiB |")
    return rows


def noop_run(counts: dict, keep: Path | None = None, repeats: int = 3) -> dict:
    """No-op ``dvc repro prepare`` on a dataset folder of ``counts`` videos in the AVSBench layout,
    read as a user's copy (``data.source=avsbench``, outside the project): the part of a no-op
    whose cost grows with the dataset. Measured with ``prepare`` depending on the ``manifest``
    stage (this project) and, for comparison, on the folder itself (DVC hashes every file)."""
    from avs_core.config import SyntheticParams
    from avs_core.pipeline.synthesize import generate

    videos = sum(counts.values())
    out = {"videos": videos, "frames": videos * FRAMES_PER_VIDEO}
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        data = Path(tmp) / "avsbench_data"
        t = time.perf_counter()
        generate(data, "s4", SyntheticParams(**counts))
        out["generate_s"] = time.perf_counter() - t
        out["files"] = sum(1 for p in data.rglob("*") if p.is_file())
        for variant in ("manifest", "folder"):
            root = Path(tmp) / variant
            root.mkdir()
            _project_tree(root)
            text = (REPO / "dvc.yaml").read_text()
            if variant == "folder":  # the dependency this project had before the manifest stage
                head, prepare = text.split("\n  prepare:\n", 1)
                text = head + "\n  prepare:\n" + prepare.replace("      - ${paths.manifest}\n", "      - ${data.root}\n", 1)
            (root / "dvc.yaml").write_text(text)
            params = _params({"data": {"source": "avsbench", "root": str(data)}})
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            cold, _ = _timed("dvc repro prepare", root)
            noops = []
            for _ in range(repeats):
                wall, log = _timed("dvc repro prepare", root)
                assert "Running stage 'prepare'" not in log, log
                noops.append(wall)
            out[variant] = {"cold_s": cold, "noop_s": sorted(noops)[len(noops) // 2]}
            if variant == "manifest":
                out["manifest_stage_s"] = _timed(f"{sys.executable} -m stages.manifest", root)[0]
    return out


NOOP_PLACES = ("outside", "inside, in .gitignore", "inside, in .gitignore and .dvcignore", "inside, in neither",
               "synthetic")


def noop_dag_run(counts: dict, repeats: int = 3) -> dict:
    """No-op ``dvc repro`` of the whole DAG with a user's dataset folder of ``counts`` videos
    (``data.source=avsbench``), in copies of the project in the current directory after its
    ``dvc repro``.

    Each copy records that run's outputs against the new folder with ``dvc commit -f`` (they are
    the current project's size: DVC checks an unchanged output by inode, size and mtime in its state
    cache, not by content), then runs ``dvc repro`` ``repeats`` times; each must run only the
    always-changed ``manifest``. The folder lies outside the project, or inside it (``userdata/``)
    listed in ``.gitignore``, in ``.gitignore`` and ``.dvcignore``, or in neither (left untracked);
    or it is the pipeline's own synthetic dataset (``data.source=synthetic``, ``synthesize``'s
    output, so DVC tracks it) at that size."""
    from avs_core.config import SyntheticParams
    from avs_core.pipeline.synthesize import generate

    src = Path.cwd()
    if not (src / "dvc.lock").is_file():
        raise RuntimeError(f"{src} has no dvc.lock: run `dvc repro` there first")
    videos = sum(counts.values())
    out = {"videos": videos, "frames": videos * FRAMES_PER_VIDEO, "project": str(src)}
    with tempfile.TemporaryDirectory() as tmp:
        outside = Path(tmp) / "avsbench_data"
        t = time.perf_counter()
        generate(outside, "s4", SyntheticParams(**counts))
        out["generate_s"] = time.perf_counter() - t
        out["files"] = sum(1 for p in outside.rglob("*") if p.is_file())
        for variant in NOOP_PLACES:
            root = Path(tmp) / "project"
            shutil.rmtree(root, ignore_errors=True)
            keep = shutil.ignore_patterns("__pycache__", "avsbench_synthetic", "checkpoints")
            for name in ("avs_core", "stages", "data", "models", "reports"):
                shutil.copytree(src / name, root / name, ignore=keep)
            for name in (".gitignore", ".dvcignore", "dvc.yaml", "dvc.lock"):
                shutil.copy(src / name, root / name)
            data = outside
            if variant == "synthetic":
                data = root / "data" / "avsbench_synthetic"
                outside.rename(data)
                (data / "ABOUT.txt").write_text("bench: generated by noop_dag_run\n")  # as synthesize writes it
            elif variant != "outside":
                data = root / "userdata"
                outside.rename(data)
                for listed in (".gitignore", ".dvcignore"):
                    if listed in variant:
                        with (root / listed).open("a") as fh:
                            fh.write("/userdata/\n")
            untracked = " -- . ':!userdata'" if variant.endswith("neither") else ""  # as a user who never adds it
            params = yaml.safe_load((src / "params.yaml").read_text())
            if variant == "synthetic":
                params["data"].update(source="synthetic", root=str(data.relative_to(root)))
                params["data"]["synthetic"].update(counts)
            else:
                params["data"].update(source="avsbench", root=str(data))
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            synthesize = "" if variant == "synthetic" else f" && {sys.executable} -m stages.synthesize --params params.yaml"
            _timed(f"git init -q -b main . && dvc init -q{synthesize}"
                   f" && {sys.executable} -m stages.manifest --params params.yaml && dvc commit -f -q && git add -A{untracked} && git commit -qm bench", root)
            noops = []
            for _ in range(repeats):
                wall, log = _timed("dvc repro", root)
                ran = re.findall(r"Running stage '(\w+)'", log)
                assert ran == ["manifest"], f"{variant}: not a no-op, it ran {ran}"
                noops.append(wall)
            out[variant] = noops
            if data != outside:
                data.rename(outside)
    return out


def evaluate_memory_run(test_videos: int, keep: Path | None = None) -> dict:
    """``evaluate`` alone on a test split of ``test_videos`` videos, every scored output present as
    stand-in maps of the default shapes (:data:`avs_core.scored.OUTPUTS`); returns its work time
    and peak RSS (the stage's own log line)."""
    sys.path.insert(0, str(REPO))
    from avs_core.config import PathsParams
    from avs_core.scored import OUTPUTS
    from avs_core.store import create_h5, open_h5, read_strings, write_strings

    counts = {"videos_train": 32, "videos_val": 4, "videos_test": test_videos}  # 32: the default batch must fit
    params = _params({"data": {"synthetic": counts}})
    size = params["data"]["image_size"]
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        root = Path(tmp)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for stage in ("synthesize", "prepare"):
            _timed(f"{sys.executable} -m stages.{stage}", root)
        rng = np.random.default_rng(0)
        files: dict[Path, set[tuple[str, bool]]] = {}
        for s in OUTPUTS:
            for split in ("train", "val", "test"):
                files.setdefault(root / s.file(PathsParams(), split), set()).add((s.key, s.name in ("wsavs_eq6", "crf")))
        for path, keys in files.items():
            with open_h5(root / "data/prepared" / path.name) as f:
                ids = read_strings(f["ids"])
            with create_h5(path, stage="bench", stand_in="bench") as fh:
                write_strings(fh, "ids", ids)
                for key, binary in sorted(keys):
                    write_stand_in_maps(fh, key, len(ids), size, binary, rng)
        wall, log = _timed(f"{sys.executable} -m stages.evaluate", root)
    stats = _stage_stats(log, test_videos)["evaluate"]
    return {"test_videos": test_videos, "process_s": wall, **stats}
