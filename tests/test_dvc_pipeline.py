"""The whole DAG through DVC, in a temporary git + DVC repository with tiny params."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests import layouts, test_recipes
from tests.helpers import REPO, TINY, merge, run_tiny_dag, tree_digest

pytestmark = pytest.mark.slow

SMOKE = {"data": {"synthetic": {"videos_train": 8, "videos_val": 4, "videos_test": 4}}}


def run(cmd, cwd, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True)
    if check and out.returncode:
        raise AssertionError(f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


def ran(output: str) -> list[str]:
    """Stages that ran, but ``manifest``, which runs on every ``dvc repro`` (``always_changed``)."""
    return [s for s in re.findall(r"Running stage '([^']+)'", output) if s != "manifest"]


def up_to_date(root) -> bool:
    """``dvc status`` reports nothing but the always-changed ``manifest`` stage."""
    status = json.loads(run("dvc status --json", root).stdout or "{}")
    return status.pop("manifest", ["always changed"]) == ["always changed"] and not status


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    for name in ("avs_core", "stages"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    params = merge(merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY), SMOKE)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git init -q -b main . && dvc init -q && git add -A && git commit -qm init", root)
    first = run("dvc repro", root)
    return root, first.stdout + first.stderr


def test_repro_runs_every_stage_then_nothing(project):
    root, log = project
    assert ran(log) == ["synthesize", "prepare", "spectrograms", "align", "c2am", "saliency", "pamr",
                        "affinity", "crf", "train_seg", "evaluate"]
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert {"miou", "fscore", "fscore_pooled"} <= set(metrics["test"])
    assert {"coarse_av", "shuffled_audio", "c2am", "cam", "wsavs_eq6", "pamr", "random_walk", "crf", "seg_pseudo",
            "avs_ws", "upper_bound_full"} <= set(metrics["methods"])
    assert set(metrics["pseudo_masks"]) >= {"c2am", "cam", "saliency", "wsavs_eq6", "pamr_input", "pamr", "random_walk", "crf"}
    again = run("dvc repro", root)
    assert ran(again.stdout) == [] and "Running stage 'manifest'" in again.stdout  # lists the dataset, nothing else
    assert "Stage 'prepare' didn't change" in again.stdout
    assert up_to_date(root)


def test_a_second_run_writes_identical_bytes(project, tmp_path, monkeypatch):
    """Same seed, same inputs: every stage, the training ones included, writes the same bytes again,
    so an upstream re-run whose output did not change lets DVC skip what follows.

    The second run is every stage's ``main`` in this process, in DAG order (``run_tiny_dag``), in a fresh folder with
    the project's params (what ``dvc repro -f`` runs, without DVC's per-stage process start: a third
    of the time). Compared: every file the stages wrote, but the manifest, which lists the dataset
    files' mtimes. The project's code is a copy of this checkout's, under its own git history, so
    the second run stamps the project's ``code_version`` (the provenance attribute of every HDF5
    file) instead of this checkout's."""
    from avs_core import provenance, store

    root, _ = project
    again = tmp_path / "again"
    again.mkdir()
    monkeypatch.setattr(store, "code_version", lambda stage=None: provenance.code_version(root, stage))
    monkeypatch.chdir(again)
    run_tiny_dag(again, SMOKE)  # the project's params: the repo's, TINY, SMOKE
    assert (again / "params.yaml").read_text() == (root / "params.yaml").read_text()
    first, second = written(root), written(again)
    assert first == second, "outputs differ on a second run:\n" + "\n".join(
        differences(root, again, path) for path in sorted(set(first) | set(second)) if first.get(path) != second.get(path))


def test_no_output_uses_a_filter_with_run_dependent_bytes(project):
    """Every compressed dataset the stages write uses gzip. lzf's output depends on uninitialised
    memory: one chunk compressed to other bytes in the in-process re-run of
    ``test_a_second_run_writes_identical_bytes``, which failed whenever the whole suite was collected
    in one process (the values were equal)."""
    import h5py

    root, _ = project
    filters = {}
    for path in sorted(root.glob("*/**/*.h5")):
        with h5py.File(path) as fh:
            fh.visititems(lambda name, obj: filters.__setitem__(f"{path.relative_to(root)}:{name}", obj.compression)
                          if isinstance(obj, h5py.Dataset) else None)
    assert filters and set(filters.values()) <= {None, "gzip"}, \
        {name: f for name, f in filters.items() if f not in (None, "gzip")}
    assert "gzip" in filters.values()


def written(root: Path) -> dict[str, str]:
    """md5 of every file the stages wrote under ``root`` (DVC's own ``.gitignore`` files and the
    mtime manifest left out)."""
    found = {f"{top}/{rel}": md5 for top in ("data", "models", "reports") for rel, md5 in tree_digest(root / top).items()}
    return {path: md5 for path, md5 in found.items() if Path(path).name != ".gitignore" and path != "data/manifest.tsv"}


def differences(a_root: Path, b_root: Path, path: str) -> str:
    """How ``path`` differs between two runs (HDF5: the datasets and attributes that differ, with
    the largest difference)."""
    import h5py
    import numpy as np

    a_path, b_path = a_root / path, b_root / path
    lines = [f"  {path}"]
    if not (path.endswith(".h5") and a_path.is_file() and b_path.is_file()):
        return lines[0] + ("" if a_path.is_file() and b_path.is_file() else " (only in one run)")
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        for key in sorted(set(a.attrs) | set(b.attrs)):
            if not np.array_equal(a.attrs.get(key), b.attrs.get(key)):
                lines.append(f"    attribute {key}: {a.attrs.get(key)!r} -> {b.attrs.get(key)!r}")
        for key in sorted(set(a) | set(b)):
            x, y = (a[key][()] if key in a else None), (b[key][()] if key in b else None)
            if x is None or y is None or x.shape != y.shape:
                lines.append(f"    {key}: present / shape changed")
            elif not np.array_equal(x, y):
                diff = np.abs(x.astype(np.float64) - y.astype(np.float64)) if x.dtype.kind in "fiub" else None
                lines.append(f"    {key}: {int((x != y).sum())} of {x.size} values differ"
                             + (f", max |diff| {diff.max():.3g}" if diff is not None else ""))
    return "\n".join(lines)


def experiments(root) -> dict[str, dict]:
    """``dvc exp show --json`` flattened to ``{experiment name: {"params": ..., "metrics": ...}}``."""
    found = {}

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            data = node.get("data")
            if node.get("name") and isinstance(data, dict) and "params" in data:
                found[node["name"]] = {"params": data["params"]["params.yaml"]["data"],
                                       "metrics": (data.get("metrics") or {}).get("reports/metrics.json", {}).get("data", {}),
                                       "status": data.get("status")}
            for value in node.values():
                walk(value)

    walk(json.loads(run("dvc exp show --no-pager --json", root).stdout))
    return found


def test_experiment_reruns_align_and_downstream_only(project):
    root, _ = project
    run("git add -A && git commit -qm 'first run'", root)
    out = run("dvc exp run -S alignment.tau=0.2", root)
    stages = ran(out.stdout)
    assert stages[0] == "align" and "prepare" not in stages and "spectrograms" not in stages
    assert "evaluate" in stages
    shown = run("dvc exp show --no-pager --json", root).stdout
    assert "test" in shown and "miou" in shown


def test_metrics_diff_and_exp_apply(project):
    root, _ = project
    # the workspace holds the tau=0.2 experiment, HEAD the baseline run
    head = json.loads(run("git show HEAD:reports/metrics.json", root).stdout)
    current = json.loads((root / "reports/metrics.json").read_text())
    diff = json.loads(run("dvc metrics diff --all --json", root).stdout)["reports/metrics.json"]
    assert diff["test.miou"]["old"] == pytest.approx(head["test"]["miou"])
    assert diff["test.miou"]["new"] == pytest.approx(current["test"]["miou"])
    tau_exps = [name for name, e in experiments(root).items() if e["params"]["alignment"]["tau"] == 0.2]
    assert len(tau_exps) == 1
    run("git reset -q --hard && dvc checkout -q -f", root)  # back to the baseline
    assert yaml.safe_load((root / "params.yaml").read_text())["alignment"]["tau"] != 0.2
    run(f"dvc exp apply {tau_exps[0]}", root)
    assert yaml.safe_load((root / "params.yaml").read_text())["alignment"]["tau"] == 0.2
    assert json.loads((root / "reports/metrics.json").read_text()) == current
    assert up_to_date(root)  # outputs restored from the cache too
    run("git reset -q --hard && dvc checkout -q -f", root)


def test_queued_sweep_runs_with_one_worker(project):
    root, _ = project
    # a param of the last stage only: each queued experiment re-runs evaluate alone (the others come
    # from the cache), which keeps this test about the queue, not about re-training
    run("dvc exp run --queue -S 'eval.batch_frames=5,10'", root)
    run("dvc queue start -j 1", root)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = run("dvc queue status", root).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(2)
    else:
        pytest.fail(f"queue did not finish:\n{status}")
    assert "Failed" not in status, status + run("dvc queue logs $(dvc exp ls --name-only | tail -1)", root, False).stdout
    swept = {e["params"]["eval"]["batch_frames"]: e for e in experiments(root).values()}
    assert {5, 10} <= set(swept)
    for frames in (5, 10):
        assert swept[frames]["metrics"]["test"]["miou"] >= 0
    assert up_to_date(root)  # the queue ran elsewhere; workspace untouched


SECTION_CHANGES = [  # (key, new value, stages that must see it as changed)
    ("base.seed", 1, {"align", "c2am", "saliency", "affinity", "train_seg"}),
    ("data.subset", "ms3", {"synthesize", "prepare", "evaluate"}),
    ("data.image_size", 96, {"prepare", "align", "c2am", "saliency", "affinity"}),
    ("data.synthetic.seed", 3, {"synthesize"}),
    ("audio.frame_seconds", 0.5, {"spectrograms"}),
    ("alignment.tau", 0.33, {"align"}),  # not 0.2: the experiment test leaves that in the workspace
    ("alignment.audio_window", "clip", {"align", "train_seg"}),
    ("c2am.alpha", 0.5, {"c2am"}),
    ("saliency.cue_threshold", 0.4, {"saliency"}),
    ("pamr.iters", 3, {"pamr"}),
    ("affinity.radius", 4, {"affinity"}),
    ("crf.iters", 3, {"crf"}),
    ("seg.steps", 6, {"train_seg"}),
    ("eval.batch_frames", 5, {"evaluate"}),
]


@pytest.mark.parametrize("key,value,expected", SECTION_CHANGES, ids=[c[0] for c in SECTION_CHANGES])
def test_param_change_marks_exactly_its_stages(project, key, value, expected):
    root, _ = project
    path = root / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    try:
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        status = json.loads(run("dvc status --json", root).stdout or "{}")
    finally:
        path.write_text(original)
    changed = {stage for stage, entries in status.items()
               if any("changed deps" in e and "params.yaml" in e["changed deps"] for e in entries if isinstance(e, dict))}
    assert changed == expected


def test_official_ms3_layout_runs_through_the_same_dag(project):
    """A user's dataset folder in the official MS3 layout (``data.source=avsbench``): nothing is
    generated, and the whole DAG runs without categories (no CAM, AVS(ws) skipped). One run
    covers both the user's-folder path and MS3; the S4 layout's readers are in test_readers."""
    root, _ = project
    layouts.write_ms3(root / "fixture")  # 2 train, 1 val, 1 test video in the official MS3 layout
    out = run("dvc exp run -S data.source=avsbench -S data.subset=ms3 -S data.root=fixture -S alignment.batch_size=2",
              root)
    assert {"prepare", "evaluate"} <= set(ran(out.stdout))
    assert [p.name for p in (root / "data/avsbench_synthetic").iterdir()] == ["ABOUT.txt"]  # nothing generated
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert metrics["test"]["source"] == "avsbench" and metrics["test"]["subset"] == "ms3"
    assert metrics["methods"]["seg_pseudo"]["miou"] >= 0 and "cam" not in metrics["methods"]  # MS3 has no categories


@pytest.fixture(scope="module")
def committed_copy(project, tmp_path_factory):
    """A copy of the project with its run committed (dvc.lock), as a user's repository is:
    `dvc exp run` starts experiments from HEAD's recorded outputs."""
    root, _ = project
    copy = tmp_path_factory.mktemp("committed") / "proj"
    shutil.copytree(root, copy, symlinks=True)
    run("git add -A && git commit -qm run", copy)
    return copy


@pytest.mark.parametrize("name", sorted(test_recipes.recipes()))
def test_each_recipe_plans_a_full_dry_run(committed_copy, name, tmp_path):
    """docs/RECIPES.md: the recipe's ``-S`` values written into params.yaml (what ``dvc exp run -S``
    does first), then ``dvc repro --dry`` plans the whole chain. ``dvc exp run --dry`` itself stops
    at the first stage whose input only an earlier, not-run stage would write, because its dry run
    happens in an empty temporary copy (treeverse/dvc#10135, open)."""
    argv = [a.replace("/path/to/avsbench_data", str(tmp_path)) for a in test_recipes.recipes()[name]]
    before = (committed_copy / "params.yaml").read_text()
    try:
        (committed_copy / "params.yaml").write_text(yaml.safe_dump(test_recipes.set_params(argv), sort_keys=False))
        out = run("dvc repro --dry", committed_copy)
    finally:
        (committed_copy / "params.yaml").write_text(before)
    planned = ran(out.stdout)
    assert {"prepare", "align", "c2am", "train_seg", "evaluate"} <= set(planned), out.stdout[-2000:]
