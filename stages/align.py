"""Stage ``align``: contrastive audio-visual pretraining and coarse sounding maps (``data/align``)."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

from avs_core import alignment
from avs_core.config import Params
from avs_core.data.splits import load_split
from avs_core.engine import checkpoint
from avs_core.engine.distributed import init_distributed
from avs_core.quality import score_stored_maps
from avs_core.reporting import live_logger
from avs_core.store import atomic_dir
from stages._common import main_only_dir, run_stage

CHECKPOINT = Path("models/align.pt")
MAPS_DIR = Path("data/align")
LIVE_DIR = "reports/align"
RESUME = Path("data/checkpoints/align.resume.pt")
log = logging.getLogger("stages.align")


def work(params: Params) -> None:
    p = params.alignment
    dist = init_distributed(params.compute)
    train_split = load_split("train", p.audio_window)
    val_split = load_split("val", p.audio_window)
    model = alignment.AlignModel(p)
    fingerprint = json.dumps(asdict(replace(p, resume=False)), sort_keys=True)
    resumer = checkpoint.Resumer(RESUME, fingerprint, p.resume)
    # the DVCLive folder appears with the other outputs, not epoch by epoch (no partial output)
    with main_only_dir(LIVE_DIR, dist) as live_dir:
        live = live_logger(live_dir) if dist.is_main else None

        def on_epoch(epoch, metrics, state):
            if dist.is_main:
                for name, value in metrics.items():
                    live.log_metric(f"train/{name}", value)
                live.next_step()
                resumer.keep(state)

        alignment.train(model, train_split, val_split, p, dist, on_epoch, resumer.restore())
        if not dist.is_main:
            return
        checkpoint.save(CHECKPOINT, {"visual": model.visual.state_dict(), "audio": model.audio.state_dict(),
                                     "params": asdict(p)})
        splits = {"train": train_split, "val": val_split, "test": load_split("test", p.audio_window)}
        with atomic_dir(MAPS_DIR) as tmp:
            alignment.write_maps(model, splits, p, params.data.image_size, tmp, dist.device,
                                 {"params_json": fingerprint})
        summary = {}
        for name, key, rule in (("coarse_av", "fused", "minmax"), ("coarse_av_median", "fused", "median"),
                                ("shuffled_audio", "fused_shuffled", "minmax"),
                                ("shuffled_audio_median", "fused_shuffled", "median")):
            summary[name] = score_stored_maps(MAPS_DIR / "test.h5", key, "test", rule)
            log.info("test %-22s mIoU %.4f  F %.4f", name, summary[name]["miou"], summary[name]["fscore"])
        live.summary["test"] = summary
        live.end()
    resumer.finish()


def main(argv: list[str] | None = None) -> int:
    return run_stage("align", work, argv)


if __name__ == "__main__":
    raise SystemExit(main())
