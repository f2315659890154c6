"""Stage ``evaluate``: the benchmark table, ``reports/metrics.json`` and plots (``reports/evaluate``)."""
from __future__ import annotations

import logging
import sys

from avs_core import learning
from avs_core.pipeline import evaluate
from avs_core.config import Params
from avs_core.explore.grid import render
from avs_core.store import atomic_dir, atomic_write_json
from stages._common import run_stage

TRAINED_STAGES = ("align", "c2am", "saliency", "affinity", "train_seg")
log = logging.getLogger("stages.evaluate")


def work(params: Params) -> None:
    headline = f"seg_{params.seg.supervision}" if params.seg.supervision == "pseudo" else \
        {"none": "avs_ws", "full": "upper_bound_full"}[params.seg.supervision]
    paths = params.paths
    reports = paths["reports"]
    result = evaluate.evaluate("test", params.eval.batch_frames, headline, paths)
    table, details = result["table"], result["details"]
    if headline not in table:
        raise FileNotFoundError(f"no predictions for the headline model {headline}; run `dvc repro train_seg`")
    head = table[headline]
    metrics = {
        "test": {"miou": head["miou"], "fscore": head["fscore"], "fscore_pooled": head["fscore_pooled"],
                 "supervision": params.seg.supervision, "subset": params.data.subset, "source": params.data.source},
        "methods": {k: {"miou": v["miou"], "fscore": v["fscore"], "fscore_pooled": v["fscore_pooled"]}
                    for k, v in table.items()},
        "pseudo_masks": evaluate.pseudo_mask_quality(reports),
    }
    if "upper_bound_full" in table and head["miou"] == head["miou"]:
        metrics["test"]["fraction_of_upper_bound"] = head["miou"] / max(table["upper_bound_full"]["miou"], 1e-12)
    md = evaluate.markdown_table(table, headline)
    with atomic_dir(reports / "evaluate") as tmp:
        (tmp / "table.md").write_text(evaluate.__doc__.split("\n\n", 1)[1] + "\n" + md)
        curve = details.get("f_curve", [])
        (tmp / "f_curve.csv").write_text("threshold,fscore\n" + "".join(
            f"{i / 254:.6f},{f:.6f}\n" for i, f in enumerate(curve)))
        (tmp / "per_category.csv").write_text("category,miou,fscore\n" + "".join(
            f"{c},{s['miou']:.6f},{s['fscore']:.6f}\n" for c, s in sorted(details.get("per_category", {}).items())))
        (tmp / "per_frame.csv").write_text("frame,miou\n" + "".join(
            f"{k},{s['miou']:.6f}\n" for k, s in sorted(details.get("per_frame_index", {}).items())))
        atomic_write_json(tmp / "details.json", {"table": table, **details})
        n = params.eval.qualitative_videos
        for split in ("test", "train"):  # test: predictions; train: the pseudo-mask chain on annotated frames
            render(split, None, n, n, tmp / "qualitative", paths)
    failed = learning.failed_stages(reports / stage / "learning.json" for stage in TRAINED_STAGES)
    metrics["not_learned"] = [stage for stage, _ in failed]
    atomic_write_json(reports / "metrics.json", metrics)
    warning = "".join(f"WARNING: stage '{stage}' is at its chance level ({'; '.join(bad)}): "
                      "the numbers below that depend on it are noise. See reports/" + stage + "/learning.json.\n"
                      for stage, bad in failed)
    print("\n" + warning + "\nTest split, " + params.data.subset + ", " + params.data.source + ":\n\n" + md,
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
