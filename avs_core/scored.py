"""The registry of scored outputs: every map the pipeline writes that is scored against ground
truth, with the dataset it lives in and the rule that turns it into a mask (``avs_core.maps``).

One list serves every scorer: ``evaluate``'s table (test split), each pseudo-mask stage's
``quality.json`` (annotated training frames, and objectness on the synthetic data), ``align``'s
validation summary and the explorer (``avs inspect``), all through the streaming scorer
:func:`avs_core.quality.score_stored_maps`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avs_core.config import PathsParams
from avs_core.maps import Rule


@dataclass(frozen=True)
class Scored:
    """``name``: the row in tables and reports; ``stage``: the stage that writes it (its folder is
    ``paths.<stage>``; ``sub``: a sub-folder, the ``train_seg`` mode); ``key``: the ``[V, T, h, w]``
    dataset in ``{split}.h5``; ``rule``: how it becomes a mask; ``table``: a row of ``evaluate``'s
    table (the median-rule variant of the shuffled map is ``align``'s check only)."""

    name: str
    stage: str
    key: str
    rule: Rule
    description: str
    sub: str = ""
    table: bool = True

    def file(self, paths: PathsParams, split: str) -> Path:
        return paths[self.stage if self.stage != "train_seg" else "seg"] / self.sub / f"{split}.h5"


OUTPUTS: tuple[Scored, ...] = (
    Scored("coarse_av", "align", "fused", "minmax", "EZ-VSL-style coarse AV map (M2ICL / MMICL encoders)"),
    Scored("coarse_av_median", "align", "fused", "median", "same map, EZ-VSL VGG-SS median threshold"),
    Scored("shuffled_audio", "align", "fused_shuffled", "minmax", "coarse map with another video's audio (visual-only baseline)"),
    Scored("shuffled_audio_median", "align", "fused_shuffled", "median", "same, median threshold", table=False),
    Scored("cam", "c2am", "cam", "prob", "CAM of a linear classifier on instance labels"),
    Scored("c2am", "c2am", "c2am", "prob", "C2AM class-agnostic map"),
    Scored("saliency", "saliency", "saliency", "prob", "salient-object net trained on C2AM cues"),
    Scored("wsavs_eq6", "saliency", "eq6", "prob", "WS-AVS Eq. 6 pseudo mask (argmax [1-S; A])"),
    Scored("pamr_input", "pamr", "fused", "prob", "PAMR input: the coarse map fused with the object maps (pamr.fusion)"),
    Scored("pamr", "pamr", "pamr", "prob", "PAMR on the fused coarse map"),
    Scored("random_walk_grid", "affinity", "walk_grid", "prob",
           "the random walk on its grid, upsampled bilinearly (USPL, IRN; affinity.upsample=bilinear)"),
    Scored("random_walk", "affinity", "walk", "prob", "affinity random walk (USPL SMR) as the later stages read it"),
    Scored("crf", "crf", "mask", "prob", "dense CRF pseudo mask"),
    Scored("avs_ws", "train_seg", "prob", "prob", "AVS(ws): same network, no mask (instance labels + L_avf)", sub="none"),
    Scored("seg_pseudo", "train_seg", "prob", "prob", "segmentation trained on pseudo masks (headline)", sub="pseudo"),
    Scored("upper_bound_full", "train_seg", "prob", "prob", "same network, ground-truth masks (upper bound)", sub="full"),
)
PSEUDO_STAGES = ("c2am", "saliency", "pamr", "affinity", "crf")


def of_stage(stage: str) -> list[Scored]:
    """The outputs ``stage`` writes, in pipeline order."""
    return [s for s in OUTPUTS if s.stage == stage]


def by_name(name: str) -> Scored:
    return next(s for s in OUTPUTS if s.name == name)
