"""The robustness harness: the whole DAG with the default params on every synthetic style, S4 and MS3.

A learned stage counts as working only against its chance level and a shuffled-input control, on
more than one style; this runs each (style, subset) as a fresh ``dvc repro`` and reads back what
the stages wrote (``reports/metrics.json``, ``reports/<stage>/learning.json`` and quality reports).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from avs_core.store import open_h5
from bench.pipeline import REPO, _merge, _timed, pipeline_run

STYLES = ("shapes", "textured", "flat")
SUBSETS = ("s4", "ms3")
BASELINES = ("coarse_av", "coarse_av_median", "shuffled_audio", "cam", "c2am", "saliency", "wsavs_eq6", "avs_ws")
CHAIN = ("coarse_av", "pamr", "random_walk", "crf")
# pamr.fusion values measured after the default run, in the same project (pamr and later re-run); the
# one the default pamr.fusion: val chose is the default run itself and is not re-run
FUSIONS = ("av", "av_gated")
FUSION_STEPS = ("pamr_input", "pamr", "random_walk", "crf", "seg_pseudo")


def _read(root: Path) -> dict:
    metrics = json.loads((root / "reports/metrics.json").read_text())
    learning = {}
    for stage in ("align", "c2am", "saliency", "affinity", "train_seg"):
        path = root / "reports" / stage / "learning.json"
        if path.is_file():
            learning[stage] = json.loads(path.read_text())
    objectness = {}
    for stage in ("c2am", "saliency"):
        path = root / "reports" / stage / "quality.json"
        if path.is_file():
            objectness.update({k.removesuffix("_objectness"): v for k, v in json.loads(path.read_text()).items()
                               if k.endswith("_objectness")})
    coarse = root / "reports/pamr/coarse.json"
    with open_h5(root / "data/pseudo/affinity/val.h5") as f:
        walk = json.loads(f.attrs["params_json"]).get("walk_used", {})
    full = root / "data/seg/full/test.h5"
    full_channel = "n/a"
    if full.is_file():
        with open_h5(full) as f:
            full_channel = str(f.attrs.get("map_input", "?"))
    return {"metrics": metrics, "learning": learning, "objectness": objectness, "full_channel": full_channel,
            "align": json.loads((root / "reports/align/metrics.json").read_text())["train"],
            "coarse": json.loads(coarse.read_text()) if coarse.is_file() else {}, "walk": walk,
            # the project is a clone of the checkout (same code stamps): the default run's lock can be committed
            "dvc_lock": (root / "dvc.lock").read_text()}


def other_fusions(root: Path, fusions=FUSIONS) -> dict:
    """After a default run in ``root``: each ``pamr.fusion`` value in turn (``dvc repro`` re-runs
    pamr and everything after it), read back like the default run; params are restored after. The
    fusion the default run used is skipped: its figures are the default run's."""
    params_path = root / "params.yaml"
    original = params_path.read_text()
    used = _read(root)["coarse"].get("fusion")
    out = {}
    try:
        for fusion in (f for f in fusions if f != used):
            params = yaml.safe_load(original)
            params["pamr"]["fusion"] = fusion
            params_path.write_text(yaml.safe_dump(params, sort_keys=False))
            wall, _ = _timed("dvc repro", root)
            out[fusion] = {**_read(root), "repro_s": wall}
    finally:
        params_path.write_text(original)
    return out


# every seed in params.yaml: a draw offsets each by the same k (k = 0 is the defaults themselves)
SEED_KEYS = (("base", "seed"), ("data", "synthetic", "seed"), ("alignment", "seed"), ("seg", "seed"))


def seed_override(draw: int) -> dict:
    """The params of draw ``draw``: every seed key at its default + ``draw`` (another dataset, other
    initial weights and batches). Draw 0 overrides nothing."""
    if draw == 0:
        return {}
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    out: dict = {}
    for keys in SEED_KEYS:
        value, node = defaults, out
        for k in keys:
            value = value[k]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value + draw
    return out


def run_one(style: str, subset: str, fusions=FUSIONS, draw: int = 0) -> dict:
    override = _merge({"data": {"subset": subset, "synthetic": {"style": style}}}, seed_override(draw))
    run = pipeline_run(1, override, collect=lambda root: {**_read(root), "fusions": other_fusions(root, fusions)},
                       noop=False)
    return {"style": style, "subset": subset, "draw": draw, "cold_s": run["cold_s"], "stages": run["stages"],
            **run["collected"]}


def fusion_table(runs: list[dict]) -> list[str]:
    """Test mIoU / F at every step after the fusion, for the default and each other ``pamr.fusion``."""
    out = ["| style / subset | pamr.fusion | " + " | ".join(FUSION_STEPS) + " |",
           "|---|---|" + "---|" * len(FUSION_STEPS)]
    for r in runs:
        default = f"default ({r.get('coarse', {}).get('fusion', '?')})"
        for fusion, doc in ((default, r), *r.get("fusions", {}).items()):
            m = doc["metrics"]["methods"]
            cells = [f"{m[s]['miou']:.3f} / {m[s]['fscore']:.3f}" if s in m else "n/a" for s in FUSION_STEPS]
            out.append(f"| {r['style']} / {r['subset']} | {fusion} | " + " | ".join(cells) + " |")
    return out


def _check(doc: dict, prefix: str) -> dict | None:
    return next((c for c in doc.get("checks", []) if c["name"].startswith(prefix)), None)


def row(r: dict) -> dict:
    """The figures the issue's targets are stated in, for one run."""
    m = r["metrics"]["methods"]
    get = lambda name, key="miou": m.get(name, {}).get(key, float("nan"))  # noqa: E731
    head, full, crf = get("seg_pseudo"), get("upper_bound_full"), get("crf")
    retrieval = _check(r["learning"].get("align", {}), "val audio->")
    best_base = max((b for b in BASELINES if b in m), key=lambda b: get(b))
    best_base_f = max((b for b in BASELINES if b in m), key=lambda b: get(b, "fscore"))
    chain = [get(c) for c in CHAIN]
    return {
        "run": f"{r['style']} / {r['subset']}" + (f", draw {r['draw']}" if r.get("draw") else ""),
        "style_subset": f"{r['style']} / {r['subset']}",
        "retrieval": retrieval["value"] if retrieval else float("nan"),
        "retrieval_chance": retrieval["chance"] if retrieval else float("nan"),
        "image_retrieval": float(r.get("align", {}).get("val_top1_category", "nan")),  # DVCLive writes NaN as a string
        "retrieval_all_stages": float(r.get("align", {}).get("val_top1_object_category", "nan")),
        "map_stages": "+".join(map(str, r.get("coarse", {}).get("stages", []))) or "?",
        "coarse": get("coarse_av"), "shuffled": get("shuffled_audio"),
        "full": full, "full_channel": r.get("full_channel", "?"), "head": head, "head_f": get("seg_pseudo", "fscore"), "crf": crf,
        "head_over_full": head / full if full else float("nan"), "head_over_crf": head / crf if crf else float("nan"),
        "best_baseline": f"{best_base} {get(best_base):.3f} / {best_base_f} F {get(best_base_f, 'fscore'):.3f}",
        "beats_baselines": head > get(best_base) and get("seg_pseudo", "fscore") > get(best_base_f, "fscore"),
        "chain": " → ".join(f"{v:.3f}" for v in chain) + (f" (walk, bilinear: {get('random_walk_grid'):.3f})"
                                                          if "random_walk_grid" in m else "")
                 + (f"; walk beta {r['walk']['beta']:g}, t {r['walk']['t']}" if r.get("walk") else ""),
        "chain_monotone": all(b > a for a, b in zip(chain, chain[1:])),
        "objectness": ", ".join(f"{k} {v['miou']:.3f}" for k, v in r["objectness"].items()) or "n/a",
        "not_learned": ", ".join(r["metrics"].get("not_learned", [])) or "none",
        "cold_s": r["cold_s"],
    }


def table(rows: list[dict]) -> list[str]:
    out = ["| style / subset | align val top-1 same category: sounding object, best map stage (all stages summed), image (chance) | "
           "stages PAMR refines (`pamr.coarse`) | coarse map test mIoU (shuffled audio) | "
           "full supervision mIoU (its input channel) | headline mIoU / F | headline / full | headline / CRF | best baseline (mIoU; F) | "
           "beats all baselines | coarse → PAMR → walk → CRF (test mIoU; the walk upsampled as USPL does) | objectness mIoU (all objects) | "
           "stages at chance | cold `dvc repro` |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['run']} | {r['retrieval']:.3f} ({r['retrieval_all_stages']:.3f}), {r['image_retrieval']:.3f} "
                   f"({r['retrieval_chance']:.3f}) | {r['map_stages']} | {r['coarse']:.3f} ({r['shuffled']:.3f}; "
                   f"{r['coarse'] / max(r['shuffled'], 1e-9):.1f}x) | {r['full']:.3f} ({r['full_channel']}) | {r['head']:.3f} / {r['head_f']:.3f} | "
                   f"{r['head_over_full']:.2f} | {r['head_over_crf']:.2f} | {r['best_baseline']} | "
                   f"{'yes' if r['beats_baselines'] else 'no'} | {r['chain']} ({'rises' if r['chain_monotone'] else 'not monotone'}) | "
                   f"{r['objectness']} | {r['not_learned']} | {r['cold_s']:.0f} s |")
    return out


SPREAD = (("retrieval", "align retrieval"), ("coarse_ratio", "coarse / shuffled"), ("full", "full"),
          ("head", "headline"), ("head_over_full", "headline / full"), ("head_over_crf", "headline / CRF"))


def spread_table(rows: list[dict]) -> list[str]:
    """Per (style, subset) over its draws: mean and [min, max] of the target figures, and on how many
    draws the headline beat every baseline and the chain rose at each step. The draw-to-draw spread
    is what a change has to exceed before one run says it helped."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["style_subset"], []).append({**r, "coarse_ratio": r["coarse"] / max(r["shuffled"], 1e-9)})
    out = ["| style / subset | draws | " + " | ".join(f"{name} mean [min, max]" for _, name in SPREAD)
           + " | beats all baselines | chain rises |", "|---|---|" + "---|" * (len(SPREAD) + 2)]
    for run, rs in groups.items():
        cells = []
        for key, _ in SPREAD:
            v = [r[key] for r in rs]
            cells.append(f"{sum(v) / len(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
        out.append(f"| {run} | {len(rs)} | " + " | ".join(cells) + f" | {sum(r['beats_baselines'] for r in rs)} of {len(rs)}"
                   f" | {sum(r['chain_monotone'] for r in rs)} of {len(rs)} |")
    return out
