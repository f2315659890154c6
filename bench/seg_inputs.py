"""What limits the segmentation network: its inputs, measured one model at a time.

Run in a project after ``dvc repro crf`` (``python -m bench --only seg-inputs``). Every row trains
one ``train_seg`` model with the project's params plus the row's overrides (the stage's own
``train_seg.train``, seed ``seg.seed``) and scores it on val (model selection) and test. The
``condition`` column replaces the frame's audio embedding:

* ``audio``: the frozen ``align`` audio embedding (what the stage uses);
* ``shuffled``: the same embeddings, permuted over all frames of the split (train, val and test
  alike): the control that says how much of the score the audio buys;
* ``category``: the video's true category, one-hot (a perfect audio branch; S4 only).

Beside the table (S4): a linear probe on the audio embeddings (trained on the train split's
categories), which says whether the audio side can tell the categories apart at all. On MS3,
which has no per-video category, the probe and the ``category`` rows are left out.

``python -m bench --only seg-seeds`` trains the stage's recipe itself over seeds instead: for seed
s, the init draw the stage takes from ``base.seed`` and ``seg.seed`` (batches, flips) are both s,
so seed 0 is the stage's own model; it gives the spread of the pseudo network and of full
supervision, and their ratios to the labels and to each other.
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
from avs_core.runtime import seed_everything
from avs_core.supervision import training_targets

# (condition, seg overrides), each trained with full supervision and on the pseudo masks
VARIANTS = (
    ("audio", {"map_input": "none"}),
    ("category", {"map_input": "none"}),
    ("audio", {"map_input": "none", "image_size": 96}),
    ("audio", {"map_input": "none", "crop_scale": 0.6}),
    ("audio", {"map_input": "coarse"}),
    ("audio", {"map_input": "coarse", "crop_scale": 0.6}),
    ("audio", {"map_input": "pamr"}),
    ("shuffled", {"map_input": "none"}),
    ("shuffled", {"map_input": "coarse"}),
    ("shuffled", {"map_input": "pamr"}),
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


def _project() -> dict:
    """What every row reads from the project in the current directory (after ``dvc repro crf``)."""
    params = load_params("params.yaml")
    a, paths = params.alignment, params.paths
    splits = {n: load_split(n, a.audio_window, paths["prepared"], paths["spectrograms"]) for n in SPLITS}
    return {"params": params, "splits": splits,
            "emb": {n: ts.audio_embeddings(paths["align_model"], a, s) for n, s in splits.items()},
            "masks": {n: load_masks(n, paths["prepared"])[0] for n in ("val", "test")},
            "crf": {n: score_stored_maps(paths["crf"] / f"{n}.h5", "mask", n, "prob", paths["prepared"])["miou"]
                    for n in ("val", "test")}}


def _train_row(proj: dict, mode: str, p, cond: dict, seed: int | None = None) -> dict:
    """One model: ``seed`` None seeds torch with ``p.seed`` (this bench's rows), else ``seed_everything(seed)``
    (the stage's draw from ``base.seed``)."""
    params, splits, masks = proj["params"], proj["splits"], proj["masks"]
    a, paths = params.alignment, params.paths
    data = {n: ts.SegData(s, p, cond[n], ts.input_maps(p, paths["pamr"], n)) for n, s in splits.items()}  # as the stage
    targets = training_targets(mode, splits["train"].ids, splits["train"].frames.shape[1], paths["crf"] / "train.h5",
                               paths["prepared"])
    if seed is None:
        torch.manual_seed(p.seed)
    else:
        seed_everything(seed)
    model = ts.build_model(p, a, splits["train"].frames.shape[1], paths["align_model"])
    start = time.perf_counter()
    info = ts.train(model, data["train"], targets, data["val"], masks["val"], p)
    return {"supervision": mode, "val": info["val_miou"], "test": ts.val_miou(model, data["test"], masks["test"]),
            "best_step": info["best_step"], "seconds": time.perf_counter() - start}


def run(rows=ROWS, steps: int | None = None) -> dict:
    """On the project in the current directory; ``steps`` overrides ``seg.steps`` (smoke runs)."""
    proj = _project()
    params, splits, emb = proj["params"], proj["splits"], proj["emb"]
    categories = splits["train"].has_categories
    out = {"style": params.data.synthetic.style, "subset": params.data.subset,
           "probe": audio_probe(emb, splits) if categories else None, "crf": proj["crf"], "rows": []}
    for mode, condition, overrides in rows:
        if condition == "category" and not categories:
            continue
        p = dataclasses.replace(params.seg, **overrides, **({"steps": steps} if steps else {}))
        out["rows"].append({**_train_row(proj, mode, p, _condition(condition, emb, splits, params.alignment.dim)),
                            "condition": condition, "overrides": overrides})
    return out


def _condition(name: str, emb: dict, splits: dict, dim: int) -> dict:
    """Per split, ``[V, T, dim]`` float32: what the network reads in place of the audio."""
    if name == "audio":
        return emb
    if name == "category":
        return {n: _one_hot(s, dim) for n, s in splits.items()}
    if name == "shuffled":
        rng = np.random.default_rng(0)
        return {n: e.reshape(-1, e.shape[-1])[rng.permutation(e.shape[0] * e.shape[1])].reshape(e.shape)
                for n, e in emb.items()}
    raise ValueError(f"unknown condition {name!r}")


def seeds(seed_list=(0, 1, 2), modes=("pseudo", "full"), steps: int | None = None) -> dict:
    """The stage's recipe over seeds, on the project in the current directory (seed 0 = the stage's model)."""
    proj = _project()
    params = proj["params"]
    out = {"style": params.data.synthetic.style, "crf": proj["crf"], "rows": []}
    for mode in modes:
        for seed in seed_list:
            p = dataclasses.replace(params.seg, seed=seed, **({"steps": steps} if steps else {}))
            out["rows"].append({**_train_row(proj, mode, p, proj["emb"], seed=seed), "seed": seed})
    return out


def seeds_table(result: dict) -> list[str]:
    by_mode = {}
    for r in result["rows"]:
        by_mode.setdefault(r["supervision"], []).append(r)
    lines = [f"Style `{result['style']}`. CRF labels: val {result['crf']['val']:.3f}, test {result['crf']['test']:.3f} mIoU.",
             "", "| supervision | seeds | test mIoU per seed | mean (sd) | val mIoU per seed | / CRF labels (mean) |",
             "|---|---|---|---|---|---|"]
    for mode, rows in by_mode.items():
        test = np.array([r["test"] for r in rows])
        val = np.array([r["val"] for r in rows])
        sd = test.std(ddof=1) if len(test) > 1 else 0.0
        seeds_used = ", ".join(str(r["seed"]) for r in rows)
        lines.append(f"| {mode} | {seeds_used} | {' / '.join(f'{t:.3f}' for t in test)} | {test.mean():.3f} ({sd:.3f}) | "
                     f"{' / '.join(f'{v:.3f}' for v in val)} | {test.mean() / result['crf']['test']:.2f} |")
    if "pseudo" in by_mode and "full" in by_mode:
        ratios = [f"{p['test'] / f['test']:.2f}" if f["test"] > 0 else "n/a"
                  for p, f in zip(by_mode["pseudo"], by_mode["full"])]
        lines += ["", "Pseudo / full per seed: " + " / ".join(ratios) + "."]
    return lines


def _one_hot(split, dim: int) -> np.ndarray:
    out = np.zeros((*split.frames.shape[:2], dim), np.float32)
    out[np.arange(len(split)), :, split.labels] = 1.0
    return out


def table(result: dict) -> list[str]:
    probe, crf = result["probe"], result["crf"]
    probe_text = "no categories" if probe is None else f"val {probe['val']:.3f}, test {probe['test']:.3f}"
    lines = [f"Style `{result['style']}` / {result.get('subset', 's4')}. Audio probe accuracy: {probe_text}. "
             f"CRF labels: val {crf['val']:.3f}, test {crf['test']:.3f} mIoU.", "",
             "| supervision | condition | overrides | val mIoU | test mIoU | best step | seconds |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        over = ", ".join(f"{k}={v}" for k, v in r["overrides"].items())
        lines.append(f"| {r['supervision']} | {r['condition']} | {over} | {r['val']:.3f} | {r['test']:.3f} | "
                     f"{r['best_step']} | {r['seconds']:.1f} |")
    return lines
