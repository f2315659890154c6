"""Stage ``align``: contrastive audio-visual pretraining and coarse sounding maps (``data/align``)."""
from __future__ import annotations

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




def learning_checks(last: dict, per_stage: dict[int, dict], val: dict, train_split) -> list[learning.Check]:
    """Loss against its chance level; retrieval against 1/C (1/V without categories) in the best of
    the coarse map's stages (``per_stage``: :func:`align.retrieval_top1` of each stage alone); the
    coarse map with the clip's own audio against the same map with another category's audio (val GT).

    Why the best stage and not their sum: on the ``flat`` style stage 1 retrieved the sounding
    object's category at 0.84 while stages 2-3 were at or below chance, and their sum at 0.0; the
    stage learned, and ``pamr.coarse: val`` uses the stages that help (docs/BENCHMARKS.md, session 20)."""
    checks = [learning.loss_check("train loss, last epoch", last["loss"], last["loss_chance"])]
    any_stage = next(iter(per_stage.values()))
    # the sounding objects, not whole frames: a frame that shows a silent object of the audio's
    # category matches as well as a right one, which caps image retrieval near 0.4 on this data
    for key, what, chance, factor in (("object_category", "audio->object top-1, same category", 1 / len(train_split.category_names), 1.2),
                                      ("category", "audio->image top-1, same category", 1 / len(train_split.category_names), 1.2),
                                      ("video", "audio->image top-1, own video", last["val_top1_video_chance"], 1.5)):
        if np.isfinite(any_stage[key]):
            stage = max(per_stage, key=lambda k: per_stage[k][key])
            checks.append(learning.score_check(f"val {what} (best map stage: {stage})", per_stage[stage][key], chance,
                                               factor=factor))
            break
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
        cone = align.set_audio_centre(model, train_split, p.audio_centre, dist.device)
        log.info("train audio embeddings: norm of their mean %.3f; alignment.audio_centre %.2f of it is taken off",
                 cone, p.audio_centre)
        per_stage = {s: align.retrieval_top1(model, val_split, p, dist.device, val_masks, scales=(s,)) for s in p.map_scales}
        log.info("val retrieval per map stage: %s", "; ".join(
            f"stage {s}: object {r['object_category']:.3f}, image {r['category']:.3f}" for s, r in per_stage.items()))
        splits = {"train": train_split, "val": val_split,
                  "test": load_split("test", p.audio_window, paths["prepared"], paths["spectrograms"])}
        with atomic_dir(paths["align"]) as tmp:
            align.write_maps(model, splits, p, params.data.image_size, tmp, dist.device, {"params_json": fingerprint})
            summary = {split: {} for split in ("val", "test")}
            for split, s in itertools.product(summary, of_stage("align")):
                summary[split][s.name] = score_stored_maps(tmp / f"{split}.h5", s.key, split, s.rule, paths["prepared"])
                log.info("%s %-22s mIoU %.4f  F %.4f", split, s.name, summary[split][s.name]["miou"],
                         summary[split][s.name]["fscore"])
            live.summary["test"] = summary["test"]
            live.summary["val"] = summary["val"]
            live.summary["audio_mean_norm"] = cone
            live.summary["val_retrieval_per_stage"] = {str(s): r for s, r in per_stage.items()}
            learning.report("align", learning_checks(history[-1], per_stage, summary["val"], train_split), params.base.on_chance,
                            live_dir / "learning.json")
            checkpoint.save(paths["align_model"], {"visual": model.visual.state_dict(), "audio": model.audio.state_dict(),
                                         "params": recorded(p)})
        live.end()
    resumer.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage("align", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
