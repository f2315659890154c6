"""How high can audio -> image retrieval go on the embedded data? The ceiling of the image-level
"same category" figure, and where the trained ``align`` model's best frames come from.

For an audio clip of category c, every frame that *shows* a c object (sounding, or silent beside
another category's sounding object) is an equally good image match. Replaying the generator's
validation split (S4 layout, synthetic source) gives each frame's visible categories, from which:

* ``oracle_uniform``: a perfect "is there a c object" scorer that picks uniformly among the frames
  showing c; its expected same-category top-1.
* ``oracle_fewest``: the best any image-only scorer can do without a size / position cue: among
  the frames showing c, those with the fewest objects (the likeliest to be c's own video).

With the project's ``models/align.pt``: ``image_category`` (the stage's image-level figure),
``shows_category`` (the best frame shows a c object at all) and ``object_category`` (the
sounding-object retrieval the stage checks; ceiling 1).
"""
from __future__ import annotations

import numpy as np
import torch

from avs_core.config import load_params
from avs_core.data.splits import load_masks, load_split
from avs_core.losses.contrastive import mil_similarity
from avs_core.pipeline import align
from avs_core.pipeline import synthesize as syn
from bench.map_scales import trained_align


def visible_categories(params) -> dict[str, list[set[str]]]:
    """``{video id: [categories visible in frame k, k = 1..5]}`` of the synthetic S4 val split,
    by replaying :func:`avs_core.pipeline.synthesize.generate_s4` (its random draws, in order)."""
    sp = params.data.synthetic
    style = syn.STYLES[sp.style]
    out = {}
    for i in range(sp.videos_val):
        cat = style.categories[i % len(style.categories)]
        rng = np.random.default_rng([sp.seed, 1, i])  # split index 1: val
        vid = syn._video_id(rng)
        sounding = [syn._new_object(rng, cat, sp.frame_size, style)]
        objects = sounding + syn._distractors(rng, {cat.name}, sp, sp.frame_size, style, sounding)
        _, visible = syn._render(rng, objects, sp, sp.frame_size, style)  # [5, n_obj, S, S]
        out[vid] = [{o.category.name for j, o in enumerate(objects) if visible[k, j].any()} for k in range(5)]
    return out


def run(params_path: str = "params.yaml") -> dict:
    params = load_params(params_path)
    if params.data.source != "synthetic" or params.data.subset != "s4":
        raise SystemExit("retrieval-ceiling replays the embedded S4 generator: data.source=synthetic, data.subset=s4")
    p, paths = params.alignment, params.paths
    split = load_split("val", p.audio_window, paths["prepared"], paths["spectrograms"])
    shown = visible_categories(params)
    if sorted(shown) != sorted(split.ids):
        raise SystemExit("the replayed val split does not match data/prepared/val.h5: re-run `dvc repro prepare`")
    v, t = split.frames.shape[:2]
    names, labels = split.category_names, split.labels
    visible = [shown[split.ids[q // t]][q % t] for q in range(v * t)]
    category = [names[labels[q // t]] for q in range(v * t)]
    uniform, fewest = [], []
    for q in range(v * t):
        showing = [f for f in range(v * t) if category[q] in visible[f]]
        hit = {f: labels[f // t] == labels[q // t] for f in showing}
        uniform.append(np.mean(list(hit.values())))
        least = min(len(visible[f]) for f in showing)
        fewest.append(np.mean([hit[f] for f in showing if len(visible[f]) == least]))
    out = {"style": params.data.synthetic.style, "queries": v * t, "chance": 1 / len(names),
           "oracle_uniform": float(np.mean(uniform)), "oracle_fewest": float(np.mean(fewest))}
    model = trained_align(params)
    masks, _ = load_masks("val", paths["prepared"])
    out.update({f"model_{k}": val for k, val in align.retrieval_top1(model, split, p, "cpu", masks).items()})
    with torch.no_grad():  # 80 frames: the dense similarity is small here
        audio = model.audio(torch.from_numpy(split.audio.reshape(v * t, *split.audio.shape[2:])))
        images = align.augment(torch.from_numpy(split.frames.reshape(v * t, *split.frames.shape[2:])), p.image_size, None,
                               False)
        best = sum(mil_similarity(audio, m) for m in (model.visual(images)[s - 1] for s in model.scales)).argmax(1)
    out["model_shows_category"] = float(np.mean([category[q] in visible[int(b)] for q, b in enumerate(best)]))
    return out


def table(rows: list[dict]) -> list[str]:
    out = ["| style | chance | image retrieval ceiling: uniform / fewest objects | model: image same category | "
           "model: best frame shows the category | model: sounding object same category |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['style']} | {r['chance']:.3f} | {r['oracle_uniform']:.3f} / {r['oracle_fewest']:.3f} | "
                   f"{r['model_category']:.3f} | {r['model_shows_category']:.3f} | {r['model_object_category']:.3f} |")
    return out
