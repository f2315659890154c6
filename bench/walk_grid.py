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

SPLITS = ("train", "test")


def run(params_path: str = "params.yaml") -> dict:
    """``{"style", "subset", "upsample", split: {"pamr", "pamr_grid_round_trip", "walk_grid", "walk"}}`` mIoU."""
    params = load_params(params_path)
    paths, size = params.paths, params.affinity.size
    out = {"style": params.data.synthetic.style, "subset": params.data.subset, "upsample": params.affinity.upsample}
    for split in SPLITS:
        masks, annotated = load_masks(split, paths["prepared"])
        gt = masks[annotated].astype("float32")  # [N, H0, W0]
        pamr = read_maps(paths["pamr"] / f"{split}.h5", "pamr")[annotated]  # [N, S, S]
        maps = {"pamr": pamr,
                "pamr_grid_round_trip": upsample(to_grid(pamr, size)[:, None], pamr.shape[-1]).numpy(),
                "walk_grid": read_maps(paths["affinity"] / f"{split}.h5", "walk_grid")[annotated],
                "walk": read_maps(paths["affinity"] / f"{split}.h5", "walk")[annotated]}
        n = len(gt) // 20 * 20  # whole official batches of 20 frames
        out[split] = {k: score_map_blocks([(m[:n], gt[:n])], "prob")["miou"] for k, m in maps.items()}
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
