"""Stage ``train_seg``: segmentation on pseudo masks (headline) and the baselines (``data/seg``)."""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace

from avs_core import learning
from avs_core.pipeline import train_seg
from avs_core.config import Params, SegParams, recorded
from avs_core.data.records import SPLITS
from avs_core.data.splits import load_masks, load_split
from avs_core.engine import checkpoint
from avs_core.engine.distributed import init_distributed
from avs_core.data.maps import map_file
from avs_core.reporting import live_logger
from avs_core.runtime import seed_everything
from avs_core.quality import score_stored_maps
from avs_core.supervision import training_targets
from stages._common import main_only_dir, run_stage

log = logging.getLogger("stages.train_seg")
# the pseudo network must reach this share of its CRF labels' val mIoU (with the coarse map as
# input, 0.78 of them on the test split of `shapes` and 0.95 on `flat`: docs/BENCHMARKS.md, session 9)
LEARNS_ITS_LABELS = 0.5


def work(params: Params) -> None:
    p, a, paths = params.seg, params.alignment, params.paths
    dist = init_distributed(params.compute)
    align_model = paths["align_model"]
    splits = {name: load_split(name, a.audio_window, paths["prepared"], paths["spectrograms"]) for name in SPLITS}
    audio = {name: train_seg.audio_embeddings(align_model, a, split) if p.model == "unet" else None
             for name, split in splits.items()}

    @functools.cache
    def data(map_input: str) -> dict[str, train_seg.SegData]:
        q = replace(p, map_input=map_input)
        return {name: train_seg.SegData(split, q, audio[name], train_seg.input_maps(q, paths["pamr"], name))
                for name, split in splits.items()}

    # the benchmark's validation split is annotated: model selection only
    val_masks, _ = load_masks("val", paths["prepared"])
    frames = splits["train"].frames.shape[1]
    modes = (p.supervision, *p.baselines)
    chance = learning.mask_chance_miou(val_masks[splits["val"].annotated])
    checks = []
    with main_only_dir(paths["seg"], dist) as out_dir, main_only_dir(paths["seg_models"], dist) as model_dir, \
            main_only_dir(paths["reports"] / "train_seg", dist) as live_dir:
        for mode in modes:
            if mode == "none" and p.model == "unet" and not splits["train"].has_categories:
                log.warning("AVS(ws) learns from the video categories, which this dataset does not have (MS3); "
                            "skipped (seg.model=avsbench trains it on L_avf alone)")
                continue
            targets = training_targets(mode, splits["train"].ids, frames, paths["crf"] / "train.h5", paths["prepared"],
                                       min_frames=p.batch_size)
            trained = {}  # seg.map_input value -> (model, info, resumer)
            for map_input in train_seg.map_input_choices(p, mode):
                name = mode if map_input == p.map_input else f"{mode}-{map_input}"
                trained[map_input] = fit(replace(p, map_input=map_input), name, targets, data(map_input), val_masks,
                                         params, dist, live_dir)
            if not dist.is_main:
                continue
            scores = {map_input: info["val_miou"] for map_input, (_, info, _) in trained.items()}
            map_input = max(scores, key=scores.get)  # the first on a tie: seg.map_input's
            model, info, _ = trained[map_input]
            if len(scores) > 1:
                log.info("%s: input channel %s kept (val mIoU by seg.map_input: %s)", mode, map_input,
                         ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
            info = {**info, "map_input": map_input, "val_miou_by_map_input": scores}
            checks.append(learning.score_check(f"{mode}: val mIoU (chance: all foreground)", info["val_miou"], chance))
            if mode == "pseudo":  # and it must learn its labels: a fair share of their own val mIoU
                labels = score_stored_maps(paths["crf"] / "val.h5", "mask", "val", "prob", paths["prepared"])["miou"]
                checks.append(learning.score_check("pseudo: val mIoU vs its labels' (the CRF masks') val mIoU",
                                                   info["val_miou"], labels, factor=LEARNS_ITS_LABELS))
            checkpoint.save(model_dir / f"{mode}.pt", {"model": model.state_dict(), **info})
            (out_dir / mode).mkdir()
            for name, split_data in data(map_input).items():
                with map_file(out_dir / mode / f"{name}.h5", "train_seg", name, recorded(p), paths["prepared"]) as out:
                    out.fh.attrs["supervision"] = mode
                    out.fh.attrs["map_input"] = map_input
                    for start, prob in train_seg.predict(model, split_data, dist=dist):
                        out.add("prob", start, prob)
            log.info("%s: best val mIoU %.4f at step %d", mode, info["val_miou"], info["best_step"])
            for _, _, resumer in trained.values():  # kept until the outputs are written: a stop while
                resumer.finish()                     # writing resumes there
        if dist.is_main:
            learning.report("train_seg", checks, params.base.on_chance, live_dir / "learning.json")


def fit(p: SegParams, name: str, targets, data: dict, val_masks, params: Params, dist, live_dir) -> tuple:
    """One model of ``p`` on ``targets``, curves in ``reports/train_seg/<name>``, resumable under
    ``name``; returns (model, the engine's info, its resumer)."""
    # every model starts from the same draw: the supervisions differ only in their targets, and a
    # model's run does not depend on what ran before it (the audio encoder's load, earlier modes)
    seed_everything(params.base.seed)
    frames = data["train"].split.frames.shape[1]
    model = train_seg.build_model(p, params.alignment, frames, params.paths["align_model"])
    live = live_logger(live_dir / name) if dist.is_main else None
    resumer = checkpoint.Resumer(params.paths["checkpoints"] / f"train_seg.{name}.resume.pt",
                                 json.dumps({"seg": recorded(p), "mode": targets.mode}, sort_keys=True), p.resume)

    def on_log(step, metrics, state):
        if live is None:
            return
        for metric, value in metrics.items():
            if metric != "step":
                live.log_metric(metric, value)
        live.next_step()
        resumer.keep(state)

    info = train_seg.train(model, data["train"], targets, data["val"], val_masks, p, on_log, dist, resumer.restore())
    if live is not None:
        live.summary.update({k: v for k, v in info.items() if k != "params"})
        live.end()
    return model, info, resumer


def main(argv: list[str] | None = None) -> int:
    return run_stage("train_seg", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
