"""What limits the segmentation network: its inputs, measured one model at a time.

Run in a project after ``dvc repro crf`` (``python -m bench --only seg-inputs``). Every row trains
one ``train_seg`` model with the project's params plus the row's overrides (the stage's own
``train_seg.train``, seed ``seg.seed``) and scores it on val (model selection) and test. The
``condition`` column replaces the frame's audio embedding:

* ``audio``: the frozen ``align`` audio embedding (what the stage uses);
* ``category``: the video's true category, one-hot (a perfect audio branch; S4 only).

Beside the table: a linear probe on the audio embeddings (trained on the train split's
categories), which says whether the audio side can tell the categories apart at all.
"""
from __future__ import annotations

import dataclasses
import time
import numpy as np
import torch
import torch.nn.functional as F

from avs_core.config import load_params
from avs_core.data.splits import load_masks, load_split
from avs_core.pipeline import train_seg as ts
from avs_core.quality import score_stored_maps
from avs_core.supervision import training_targets

# (condition, seg overrides), each trained with full supervision and on the pseudo masks
VARIANTS = (
    ("audio", {"coarse_input": False}),
    ("category", {"coarse_input": False}),
    ("audio", {"coarse_input": False, "image_size": 96}),
    ("audio", {"coarse_input": False, "crop_scale": 0.6}),
    ("audio", {"coarse_input": True}),
    ("audio", {"coarse_input": True, "crop_scale": 0.6}),
)
ROWS = tuple((mode, condition, overrides) for mode in ("full", "pseudo") for condition, overrides in VARIANTS)
SPLITS = ("train", "val", "test")


def audio_probe(emb: dict, splits: dict, steps: int = 500) -> dict:
    """Accuracy of a linear classifier (full-batch Adam) from the train split's embeddings to categories."""
    torch.manual_seed(0)
    x = torch.from_numpy(emb["train"]).flatten(0, 1)  # [V*T, D]
    y = torch.from_numpy(np.repeat(splits["train"].labels, emb["train"].shape[1])).long()
    clf = torch.nn.Linear(x.shape[1], len(splits["train"].category_names))
    opt = torch.optim.Adam(clf.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(clf(x), y).backward()
        opt.step()
    with torch.no_grad():
        return {n: float((clf(torch.from_numpy(emb[n]).flatten(0, 1)).argmax(1).numpy()
                          == np.repeat(splits[n].labels, emb[n].shape[1])).mean()) for n in ("val", "test")}


def run(rows=ROWS, steps: int | None = None) -> dict:
    """On the project in the current directory; ``steps`` overrides ``seg.steps`` (smoke runs)."""
    params = load_params("params.yaml")
    p0, a, paths = params.seg, params.alignment, params.paths
    splits = {n: load_split(n, a.audio_window, paths["prepared"], paths["spectrograms"]) for n in SPLITS}
    if not splits["train"].has_categories:
        raise SystemExit("seg-inputs needs per-video categories (S4): the category rows and the probe use them")
    emb = {n: ts.audio_embeddings(paths["align_model"], a, s) for n, s in splits.items()}
    coarse = {n: ts.coarse_inputs(paths["align"] / f"{n}.h5") for n in SPLITS}
    masks = {n: load_masks(n, paths["prepared"])[0] for n in ("val", "test")}
    labels = {n: score_stored_maps(paths["crf"] / f"{n}.h5", "mask", n, "prob", paths["prepared"])["miou"]
              for n in ("val", "test")}
    out = {"style": params.data.synthetic.style, "probe": audio_probe(emb, splits), "crf": labels, "rows": []}
    for mode, condition, overrides in rows:
        p = dataclasses.replace(p0, **overrides, **({"steps": steps} if steps else {}))
        cond = {n: emb[n] if condition == "audio" else _one_hot(s, a.dim) for n, s in splits.items()}
        data = {n: ts.SegData(s, p, cond[n], coarse[n] if p.coarse_input else None) for n, s in splits.items()}
        targets = training_targets(mode, splits["train"].ids, splits["train"].frames.shape[1], paths["crf"] / "train.h5",
                                   paths["prepared"])
        torch.manual_seed(p.seed)
        model = ts.build_model(p, a, splits["train"].frames.shape[1], paths["align_model"])
        start = time.perf_counter()
        info = ts.train(model, data["train"], targets, data["val"], masks["val"], p)
        out["rows"].append({"supervision": mode, "condition": condition, "overrides": overrides,
                            "val": info["val_miou"], "test": ts.val_miou(model, data["test"], masks["test"]),
                            "best_step": info["best_step"], "seconds": time.perf_counter() - start})
    return out


def _one_hot(split, dim: int) -> np.ndarray:
    out = np.zeros((*split.frames.shape[:2], dim), np.float32)
    out[np.arange(len(split)), :, split.labels] = 1.0
    return out


def table(result: dict) -> list[str]:
    probe, crf = result["probe"], result["crf"]
    lines = [f"Style `{result['style']}`. Audio probe accuracy: val {probe['val']:.3f}, test {probe['test']:.3f}. "
             f"CRF labels: val {crf['val']:.3f}, test {crf['test']:.3f} mIoU.", "",
             "| supervision | condition | overrides | val mIoU | test mIoU | best step | seconds |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        over = ", ".join(f"{k}={v}" for k, v in r["overrides"].items())
        lines.append(f"| {r['supervision']} | {r['condition']} | {over} | {r['val']:.3f} | {r['test']:.3f} | "
                     f"{r['best_step']} | {r['seconds']:.1f} |")
    return lines
