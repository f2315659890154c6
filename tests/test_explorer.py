"""The pseudo-mask explorer (``avs inspect``): its scores are evaluate's, it compares two DVC
revisions read from the cache, and the page works in a real browser (headless Chromium)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avs_core import inspect as inspect_cli
from avs_core.explore.page import write_explorer
from avs_core.config import PathsParams
from avs_core.explore.scores import STAGES, display_bytes, run_files
from tests.helpers import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NAMES = [m.name for m in STAGES]
PATHS = PathsParams()
PARAMS = str(REPO / "params.yaml")  # the outputs' layout (its paths section); the fixture repo's params are its own


def _page_data(index: Path) -> dict:
    text = index.read_text()
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))


def test_display_keeps_the_threshold():
    prob = torch.tensor([0.5, 0.5001, 0.4999, 0.0, 1.0]).view(5, 1, 1).expand(5, 4, 4).contiguous()
    shown = display_bytes(prob, 2)[:, 0, 0]
    assert shown.tolist() == [124, 132, 124, 4, 252]  # "> 0.5" <=> "> 128", the page's mask filter


def test_explorer_scores_are_evaluates(learned_run, tmp_path):
    out = tmp_path / "explorer"
    result = write_explorer([("workspace", learned_run)], ["train", "test"], out, PATHS, tile=32)
    metrics = json.loads((learned_run / "reports/metrics.json").read_text())["methods"]
    test = result["miou"]["test"][0]
    checked = 0
    for name, score in metrics.items():
        if name in NAMES:
            assert test[NAMES.index(name)] == pytest.approx(score["miou"], abs=1e-5), name
            checked += 1
    assert checked >= 10
    data = _page_data(out / "index.html")
    assert data["runs"] == ["workspace"] and set(data["splits"]) == {"train", "test"}
    videos = data["splits"]["test"]["videos"]
    assert len(videos) == 30 and all(v["ann"] == [1] * 5 for v in videos)
    train = data["splits"]["train"]["videos"]
    assert all(v["ann"] == [1, 0, 0, 0, 0] for v in train)  # S4 train: frame 1 only, no IoU elsewhere
    crf = NAMES.index("crf")
    assert train[0]["iou"][0][crf][1] is None and train[0]["iou"][0][crf][0] is not None
    import cv2
    sprite = cv2.imread(str(out / "media/test/00000_run0.png"), cv2.IMREAD_UNCHANGED)
    assert sprite.shape == (len(STAGES) * 32, 5 * 32)
    assert result["files"] == 1 + (36 + 30) * 3 and result["bytes"] > 0


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _dvc(repo: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


COPY = """import shutil, yaml
variant = yaml.safe_load(open("params.yaml"))["variant"]
shutil.copytree(f"src/{variant}/data", "data")
"""


@pytest.fixture(scope="module")
def two_runs(learned_run, tmp_path_factory):
    """A git + DVC repository whose one stage copies run ``a`` (the tiny DAG's test outputs) or run
    ``b`` (the same, with the CRF masks of the first 6 videos inverted) into ``data/``. HEAD holds
    ``a``; the experiment ``exp-b`` holds ``b``. Both live only in the DVC cache afterwards."""
    repo = tmp_path_factory.mktemp("compare")
    for variant in ("a", "b"):
        for rel in run_files("test", PATHS):
            if (learned_run / rel).is_file():
                (repo / "src" / variant / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(learned_run / rel, repo / "src" / variant / rel)
    import h5py
    with h5py.File(repo / "src/b/data/pseudo/crf/test.h5", "r+") as f:
        f["mask"][:6] = 1 - f["mask"][:6]
    (repo / "copy_variant.py").write_text(COPY)
    (repo / "params.yaml").write_text("variant: a\n")
    (repo / "dvc.yaml").write_text("stages:\n  outputs:\n    cmd: python copy_variant.py\n"
                                   "    deps: [copy_variant.py, src]\n    params: [variant]\n    outs: [data]\n")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "test")
    _dvc(repo, "init", "-q")
    _dvc(repo, "repro", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "run a")
    _dvc(repo, "exp", "run", "-q", "-S", "variant=b", "-n", "exp-b")
    shutil.rmtree(repo / "data")  # the workspace holds neither run: both must come from the cache
    return repo


def test_compare_reads_both_revisions_from_the_cache(two_runs, monkeypatch):
    monkeypatch.chdir(two_runs)
    assert inspect_cli.main(["--params", PARAMS, "--compare", "HEAD", "exp-b", "--splits", "test", "--tile", "32"]) == 0
    data = _page_data(two_runs / "reports/inspect/explorer/index.html")
    assert data["runs"] == ["HEAD", "exp-b"]
    crf = NAMES.index("crf")
    videos = data["splits"]["test"]["videos"]
    a = [v["iou"][0][crf] for v in videos]
    b = [v["iou"][1][crf] for v in videos]
    assert a[6:] == b[6:] and all(x != y for x, y in zip(a[:6], b[:6]))  # only the inverted videos differ
    pamr = NAMES.index("pamr")
    assert all(v["iou"][0][pamr] == v["iou"][1][pamr] for v in videos)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium: scripts/test.sh installs Debian's "
                    "chromium where apt-get can; elsewhere install it to run this test")
def test_explorer_in_headless_chromium(two_runs, monkeypatch, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    monkeypatch.chdir(two_runs)
    out = tmp_path / "page"
    assert inspect_cli.main(["--params", PARAMS, "--compare", "HEAD", "exp-b", "--splits", "test", "--out", str(out)]) == 0
    index = out / "explorer/index.html"
    errors = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        page.goto(index.as_uri())
        rows = "#videos tr.video-row"
        before = page.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert len(before) == 30
        crf = NAMES.index("crf")
        page.click(f"th[data-key='s{crf}d']")  # sort by the CRF difference B - A (descending first)
        after = page.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert sorted(after) == sorted(before) and after != before
        page.click(f"th[data-key='s{crf}d']")  # ascending
        diffs = page.locator(rows).evaluate_all(
            f"rs => {{ const i = [...document.querySelectorAll('#videos th')].findIndex(th => th.dataset.key === 's{crf}d');"
            " return rs.map(r => r.children[i].textContent); }")
        values = [float(x) for x in diffs]
        assert values == sorted(values) and sum(x != 0 for x in values) == 6  # only the inverted videos differ
        page.click(f"{rows} a[data-video]")
        labels = page.locator("#frames .run").all_text_contents()
        assert any("HEAD" in t for t in labels) and any("exp-b" in t for t in labels)
        assert page.locator("#frames .tile").count() == 5 * 2 * (1 + page.locator("#frames th").count() - 2)
        page.select_option("#mode", "mask")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(tmp_path / "explorer.png"))
        page.click("button[data-view='worst']")
        page.select_option("#run", "1")  # run B: its inverted CRF masks are the worst steps
        steps = page.locator("#failures tbody tr td:nth-child(3)").all_text_contents()
        assert "random_walk → crf" in steps
        page.click("button[data-view='inverted']")
        assert "crf" in page.locator("#failures tbody tr td:nth-child(3)").all_text_contents()
        browser.close()
    assert not errors, errors
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    if os.environ.get("AVS_SCREENSHOT"):
        shutil.copy(tmp_path / "explorer.png", os.environ["AVS_SCREENSHOT"])


def test_compare_names_the_bad_revision(two_runs, monkeypatch, capsys):
    monkeypatch.chdir(two_runs)
    assert inspect_cli.main(["--params", PARAMS, "--compare", "HEAD", "no-such-exp", "--splits", "test"]) == 2
    assert "'no-such-exp' is neither a git revision nor a DVC experiment" in capsys.readouterr().err
    _git(two_runs, "commit", "-q", "--allow-empty", "-m", "empty")
    lock = (two_runs / "dvc.lock").read_text()
    (two_runs / "dvc.lock").write_text(re.sub(r"md5: [0-9a-f]{32}\.dir", "md5: " + "0" * 32 + ".dir", lock))
    _git(two_runs, "commit", "-qam", "a lock whose outputs were never produced")
    assert inspect_cli.main(["--params", PARAMS, "--compare", "HEAD", "exp-b", "--splits", "test"]) == 2
    err = capsys.readouterr().err
    assert "revision 'HEAD' has no data/prepared/test.h5 in the DVC cache" in err
    _git(two_runs, "reset", "-q", "--hard", "HEAD~2")
