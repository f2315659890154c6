"""What the random walk's grid costs: the stored maps of the project in the current directory
(run ``dvc repro affinity`` first), scored on the annotated train and test frames.

Rows: the PAMR map; the PAMR map area-pooled to the affinity grid and bilinearly upsampled back
(a walk that changes nothing, upsampled as USPL and IRN upsample theirs); the walk on its grid,
upsampled (``walk_grid``: ``affinity.upsample=bilinear``); the walk as the later stages read it
(``walk``: ``affinity.upsample`` as the project sets it). Reads stored maps only: no training.
"""
from __future__ import annotations

from avs_core.config import load_params
from avs_core.data.maps import read_maps
from avs_core.data.splits import load_masks
from avs_core.engine.frames import upsample
from avs_core.maps import score_map_blocks
from avs_core.pipeline.affinity import to_grid
from avs_core.quality import score_stored_maps

SPLITS = ("train", "test")


def run(params_path: str = "params.yaml") -> dict:
    """``{"style", "subset", "upsample", split: {"pamr", "pamr_grid_round_trip", "walk_grid", "walk"}}`` mIoU."""
    params = load_params(params_path)
    paths, size = params.paths, params.affinity.size
    out = {"style": params.data.synthetic.style, "subset": params.data.subset, "upsample": params.affinity.upsample}
    for split in SPLITS:
        stored = {name: score_stored_maps(paths[stage] / f"{split}.h5", key, split, "prob", paths["prepared"])["miou"]
                  for name, stage, key in (("pamr", "pamr", "pamr"), ("walk_grid", "affinity", "walk_grid"),
                                           ("walk", "affinity", "walk"))}
        masks, annotated = load_masks(split, paths["prepared"])
        pamr = read_maps(paths["pamr"] / f"{split}.h5", "pamr")[annotated]  # [N, S, S]
        round_trip = upsample(to_grid(pamr, size)[:, None], pamr.shape[-1]).numpy()  # [N, S, S]
        gt = masks[annotated].astype("float32")  # [N, H0, W0]
        out[split] = {**stored, "pamr_grid_round_trip": score_map_blocks([(round_trip, gt)], "prob")["miou"]}
    return out


def table(results: list[dict]) -> list[str]:
    rows = ["| style / subset | split | PAMR | PAMR, to the grid and back | walk, bilinear (`walk_grid`) | walk (`affinity.upsample`) |",
            "|---|---|---|---|---|---|"]
    for r in results:
        for split in SPLITS:
            s = r[split]
            rows.append(f"| {r['style']} / {r['subset']} | {split} | {s['pamr']:.3f} | {s['pamr_grid_round_trip']:.3f} | "
                        f"{s['walk_grid']:.3f} | {s['walk']:.3f} ({r['upsample']}) |")
    return rows
