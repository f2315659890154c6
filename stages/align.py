"""Stage ``align``: contrastive audio-visual pretraining and coarse sounding maps (``data/align``)."""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging

import numpy as np

from avs_core import learning
from avs_core.pipeline import align
from avs_core.config import Params, recorded
from avs_core.data.splits import load_masks, load_split
from avs_core.engine import checkpoint
from avs_core.engine.distributed import init_distributed
from avs_core.quality import score_stored_maps
from avs_core.reporting import live_logger
from avs_core.scored import of_stage
from avs_core.store import atomic_dir
from stages._common import main_only_dir, run_stage

log = logging.getLogger("stages.align")




def learning_checks(last: dict, retrieval: dict, val: dict, train_split) -> list[learning.Check]:
    """Loss against its chance level; retrieval in the coarse map's scales (``retrieval``) against 1/C
    (1/V without categories); the coarse map with the clip's own audio against the same map with
    another category's audio (val GT)."""
    checks = [learning.loss_check("train loss, last epoch", last["loss"], last["loss_chance"])]
    if np.isfinite(retrieval["object_category"]):
        # the sounding objects, not whole frames: a frame that shows a silent object of the audio's
        # category matches as well as a right one, which caps image retrieval near 0.4 on this data
        checks.append(learning.score_check("val audio->object top-1, same category", retrieval["object_category"],
                                           1 / len(train_split.category_names), factor=1.2))
    elif np.isfinite(retrieval["category"]):
        checks.append(learning.score_check("val audio->image top-1, same category", retrieval["category"],
                                           1 / len(train_split.category_names), factor=1.2))
    else:
        checks.append(learning.score_check("val audio->image top-1, own video", retrieval["video"],
                                           last["val_top1_video_chance"]))
    checks.append(learning.score_check("val coarse-map mIoU, own audio vs shuffled", val["coarse_av"]["miou"],
                                       val["shuffled_audio"]["miou"], factor=1.2))
    return checks


def work(params: Params) -> None:
    p, paths = params.alignment, params.paths
    dist = init_distributed(params.compute)
    train_split = load_split("train", p.audio_window, paths["prepared"], paths["spectrograms"])
    val_split = load_split("val", p.audio_window, paths["prepared"], paths["spectrograms"])
    model = align.AlignModel(p, align.num_classes(p, train_split))
    fingerprint = json.dumps(recorded(p), sort_keys=True)
    resumer = checkpoint.Resumer(paths["checkpoints"] / "align.resume.pt", fingerprint, p.resume)
    # the DVCLive folder appears with the other outputs, not epoch by epoch (no partial output)
    with main_only_dir(paths["reports"] / "align", dist) as live_dir:
        live = live_logger(live_dir) if dist.is_main else None

        start = resumer.restore()

        def on_log(step, metrics, state):
            if dist.is_main:
                for name, value in metrics.items():
                    if name != "step":
                        live.log_metric(f"train/{name}", value)
                live.next_step()
                resumer.keep(state)

        val_masks, _ = load_masks("val", paths["prepared"])  # validation ground truth: retrieval of sounding objects
        history, model = align.train(model, train_split, val_split, p, dist, on_log, start, val_masks)
        if not dist.is_main:
            return
        chosen, subsets = align.select_map_scales(model, val_split, val_masks, p, params.data.image_size, dist.device)
        if subsets:
            log.info("coarse map: stages %s (val mIoU own / shuffled: %s)", list(chosen),
                     ", ".join(f"{'+'.join(map(str, k))} {own:.3f} / {other:.3f}" for k, (own, other) in subsets.items()))
        used = dataclasses.replace(p, map_scales=chosen)
        retrieval = align.retrieval_top1(model, val_split, used, dist.device, val_masks, scales=chosen)
        splits = {"train": train_split, "val": val_split,
                  "test": load_split("test", p.audio_window, paths["prepared"], paths["spectrograms"])}
        with atomic_dir(paths["align"]) as tmp:
            align.write_maps(model, splits, used, params.data.image_size, tmp, dist.device,
                             {"params_json": fingerprint, "map_scales": json.dumps(list(chosen))})
            summary = {split: {} for split in ("val", "test")}
            for split, s in itertools.product(summary, of_stage("align")):
                summary[split][s.name] = score_stored_maps(tmp / f"{split}.h5", s.key, split, s.rule, paths["prepared"])
                log.info("%s %-22s mIoU %.4f  F %.4f", split, s.name, summary[split][s.name]["miou"],
                         summary[split][s.name]["fscore"])
            live.summary["test"] = summary["test"]
            live.summary["val"] = summary["val"]
            live.summary["map_scales"] = {"chosen": list(chosen), "select": p.map_select,
                                          "val_miou_own_shuffled": {"+".join(map(str, k)): list(v) for k, v in subsets.items()},
                                          "val_retrieval": retrieval}
            learning.report("align", learning_checks(history[-1], retrieval, summary["val"], train_split), params.base.on_chance,
                            live_dir / "learning.json")
            checkpoint.save(paths["align_model"], {"visual": model.visual.state_dict(), "audio": model.audio.state_dict(),
                                         "params": recorded(p)})
        live.end()
    resumer.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage("align", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
