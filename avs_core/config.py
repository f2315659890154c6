"""Typed, validated pipeline parameters.

``params.yaml`` holds one top-level section per stage family. Each section maps onto a frozen
dataclass below. Loading rejects unknown keys, casts strings that look like numbers (``dvc exp
run -S alignment.lr=1e-5`` writes ``1e-05``, which YAML 1.1 reads as a string) and checks
ranges, always naming the offending key, before any stage does work.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

DIAGNOSTICS_DIR = "diagnostics"  # beside Single-source/ or Multi-sources/: all-object masks (synthetic only)


class ParamError(ValueError):
    """A parameter is unknown, of the wrong type or out of range. ``key`` is its dotted name."""

    def __init__(self, key: str, message: str):
        super().__init__(f"params: '{key}': {message}")
        self.key = key


def _require(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ParamError(key, message)


def _require_stages(stages: tuple[int, ...], key: str) -> None:
    _require(len(stages) >= 1 and len(set(stages)) == len(stages) and all(1 <= s <= 4 for s in stages), key,
             "must be distinct stage numbers in 1..4")


def require_batch_fits(key: str, batch_size: int, available: int, what: str) -> None:
    """For data whose size is known only at run time (a real dataset): fail naming the key."""
    _require(batch_size <= available, key, f"{batch_size} is larger than the training split ({available} {what})")


@dataclass(frozen=True)
class SyntheticParams:
    """Size and difficulty of the embedded synthetic dataset (see ``avs_core.pipeline.synthesize``)."""

    style: Literal["shapes", "textured", "flat"] = "shapes"
    videos_train: int = 96
    videos_val: int = 16
    videos_test: int = 16
    frame_size: int = 224
    seconds: int = 5
    distractor_prob: float = 0.85
    max_distractors: int = 2
    occlusion_prob: float = 0.3
    noise_level: float = 0.05
    seed: int = 0

    def validate(self, prefix: str) -> None:
        for name in ("videos_train", "videos_val", "videos_test"):
            _require(getattr(self, name) >= 1, f"{prefix}.{name}", "must be >= 1")
        _require(self.frame_size >= 32, f"{prefix}.frame_size", "must be >= 32")
        _require(self.seconds == 5, f"{prefix}.seconds", "AVSBench clips are 5 s; only 5 is supported")
        for name in ("distractor_prob", "occlusion_prob"):
            _require(0.0 <= getattr(self, name) <= 1.0, f"{prefix}.{name}", "must be in [0, 1]")
        _require(0 <= self.max_distractors <= 4, f"{prefix}.max_distractors", "must be in [0, 4]")
        _require(0.0 <= self.noise_level < 1.0, f"{prefix}.noise_level", "must be in [0, 1)")


@dataclass(frozen=True)
class DataParams:
    """Where the dataset lives and how ``prepare`` packs it."""

    source: Literal["synthetic", "avsbench"] = "synthetic"
    subset: Literal["s4", "ms3"] = "s4"
    root: str = "data/avsbench_synthetic"
    image_size: int = 128
    sample_rate: int = 16000
    on_error: Literal["fail", "skip"] = "fail"
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    def objects_file(self, split: str) -> Path | None:
        """The synthetic dataset's all-object masks of ``split`` (evaluation only); None for AVSBench."""
        return Path(self.root) / DIAGNOSTICS_DIR / f"{split}.h5" if self.source == "synthetic" else None

    def validate(self, prefix: str) -> None:
        _require(self.image_size >= 32 and self.image_size % 32 == 0, f"{prefix}.image_size",
                 f"{self.image_size} is not a positive multiple of 32 (the ResNet stride)")
        _require(8000 <= self.sample_rate <= 48000, f"{prefix}.sample_rate", "must be in [8000, 48000]")
        _require(bool(self.root), f"{prefix}.root", "must not be empty")
        self.synthetic.validate(f"{prefix}.synthetic")


@dataclass(frozen=True)
class AudioParams:
    """Spectrogram settings. The STFT itself is fixed by the reference code (``avs_core.audio``)."""

    center_seconds: float = 3.0
    frame_seconds: float = 1.0
    batch_size: int = 64

    def validate(self, prefix: str) -> None:
        _require(0.1 <= self.center_seconds <= 5.0, f"{prefix}.center_seconds", "must be in [0.1, 5]")
        _require(0.1 <= self.frame_seconds <= 5.0, f"{prefix}.frame_seconds", "must be in [0.1, 5]")
        _require(self.batch_size >= 1, f"{prefix}.batch_size", "must be >= 1")


BACKBONES = Literal["resnet18", "resnet34", "resnet50"]


def _check_weights(value: str, key: str) -> None:
    _require(value in ("none", "imagenet") or value.endswith((".pth", ".pt")), key,
             f"{value!r} must be none, imagenet or a path to a .pth / .pt state dict")


@dataclass(frozen=True)
class AlignmentParams:
    """Contrastive audio-visual alignment (WS-AVS M^2ICL + USPL mask augmentation)."""

    backbone: BACKBONES = "resnet18"
    visual_weights: str = "none"
    audio_weights: str = "none"
    audio_freq_pool: int = 2
    dim: int = 128
    proj_dropout: float = 0.1
    image_size: int = 96
    audio_window: Literal["frame", "centre", "clip"] = "frame"
    epochs: int = 14
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    tau: float = 0.03
    audio_centre: float = 0.5
    mask_drop: float = 0.5
    scales: tuple[int, ...] = (1, 2, 3, 4)
    map_scales: tuple[int, ...] = (1, 2, 3)
    weak_labels: bool = True
    audio_clusters: int = 8
    label_weight: float = 1.0
    augment: bool = True
    ema: float = 0.0
    seed: int = 0
    resume: bool = False

    def validate(self, prefix: str) -> None:
        _check_weights(self.visual_weights, f"{prefix}.visual_weights")
        _check_weights(self.audio_weights, f"{prefix}.audio_weights")
        _require(self.dim >= 8, f"{prefix}.dim", "must be >= 8")
        _require(1 <= self.audio_freq_pool <= 16, f"{prefix}.audio_freq_pool", "must be in 1..16 (1 = every frequency bin)")
        _require(0.0 <= self.proj_dropout < 1.0, f"{prefix}.proj_dropout", "must be in [0, 1)")
        _require(self.image_size >= 32 and self.image_size % 32 == 0, f"{prefix}.image_size",
                 f"{self.image_size} is not a positive multiple of 32 (the ResNet stride)")
        _require(self.epochs >= 1, f"{prefix}.epochs", "must be >= 1")
        _require(self.batch_size >= 2, f"{prefix}.batch_size", "must be >= 2 (contrastive negatives)")
        _require(self.lr > 0, f"{prefix}.lr", "must be > 0")
        _require(self.weight_decay >= 0, f"{prefix}.weight_decay", "must be >= 0")
        _require(self.tau > 0, f"{prefix}.tau", "must be > 0")
        _require(0 <= self.audio_centre <= 1, f"{prefix}.audio_centre", "must be in [0, 1] (0 = the embeddings as they are)")
        _require(0 <= self.warmup_epochs <= self.epochs, f"{prefix}.warmup_epochs", "must be in [0, epochs]")
        _require(self.label_weight >= 0, f"{prefix}.label_weight", "must be >= 0")
        _require(self.audio_clusters == 0 or self.audio_clusters >= 2, f"{prefix}.audio_clusters",
                 "must be 0 (off) or >= 2")
        _require(0.0 <= self.mask_drop < 1.0, f"{prefix}.mask_drop", "must be in [0, 1)")
        _require(0 <= self.ema < 1, f"{prefix}.ema", "must be in [0, 1) (0 = no weight averaging)")
        _require_stages(self.scales, f"{prefix}.scales")
        _require(len(self.map_scales) >= 1 and len(set(self.map_scales)) == len(self.map_scales)
                 and set(self.map_scales) <= set(self.scales), f"{prefix}.map_scales",
                 f"must be distinct stages out of alignment.scales {list(self.scales)}")
        _require(self.seed >= 0, f"{prefix}.seed", "must be >= 0")


def _check_init(value: str, key: str) -> None:
    _require(value in ("align", "none", "imagenet") or value.endswith((".pth", ".pt")), key,
             f"{value!r} must be align, none, imagenet or a path to a .pth / .pt state dict")


@dataclass(frozen=True)
class TrainingParams:
    """What every small training stage shares."""

    init: str = "align"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    resume: bool = False  # continue an interrupted run from data/checkpoints/<stage>.resume.pt

    def validate(self, prefix: str) -> None:
        _check_init(self.init, f"{prefix}.init")
        _require(self.epochs >= 1, f"{prefix}.epochs", "must be >= 1")
        _require(self.batch_size >= 2, f"{prefix}.batch_size", "must be >= 2")
        _require(self.lr > 0, f"{prefix}.lr", "must be > 0")
        _require(self.weight_decay >= 0, f"{prefix}.weight_decay", "must be >= 0")


@dataclass(frozen=True)
class C2AMRefineParams:
    """PAMR of C^2AM's map on its frame (stage c2am): the map min-max normalised per frame, raised
    to ``power``, refined at a ``size`` grid for ``iters`` steps, as stage pamr refines the coarse map."""

    iters: int = 30
    power: float = 2.0
    size: int = 64

    def validate(self, prefix: str) -> None:
        _require(self.iters >= 0, f"{prefix}.iters", "must be >= 0 (0: CCAM's map as the head draws it)")
        _require(self.power > 0, f"{prefix}.power", "must be > 0")
        _require(self.size >= 8, f"{prefix}.size", "must be >= 8")


@dataclass(frozen=True)
class C2AMParams:
    """C^2AM class-agnostic activation maps and the CAM baseline (stage c2am)."""

    # the head alone trains (freeze_backbone): 10 epochs at 1e-2 (docs/BENCHMARKS.md, session 21)
    train: TrainingParams = field(default_factory=lambda: TrainingParams(epochs=10, lr=1e-2))
    freeze_backbone: bool = True
    centre_features: bool = True
    feature_stages: tuple[int, ...] = (1, 2)
    input_scale: int = 1
    alpha: float = 0.25
    cam_epochs: int = 10
    cam_lr: float = 1e-2
    # the head's map is at stride 8 and over-covers next to objects (precision 0.39-0.40, recall
    # 0.77-0.81, session 30); refined on the frame, it follows the objects' edges (session 35)
    refine: C2AMRefineParams = field(default_factory=C2AMRefineParams)

    def validate(self, prefix: str) -> None:
        self.train.validate(f"{prefix}.train")
        self.refine.validate(f"{prefix}.refine")
        _require_stages(self.feature_stages, f"{prefix}.feature_stages")
        _require(1 <= self.input_scale <= 4, f"{prefix}.input_scale", "must be in 1..4 (1 = the frames as prepared)")
        _require(self.alpha >= 0, f"{prefix}.alpha", "must be >= 0")
        _require(self.cam_epochs >= 1, f"{prefix}.cam_epochs", "must be >= 1")
        _require(self.cam_lr > 0, f"{prefix}.cam_lr", "must be > 0")


@dataclass(frozen=True)
class CRFParams:
    """Dense CRF kernels (defaults: the probability CRF, with xy scales for ~128 px frames)."""

    iters: int = 10
    gauss_sxy: float = 3.0
    gauss_compat: float = 3.0
    bilateral_sxy: float = 30.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0

    def validate(self, prefix: str) -> None:
        _require(self.iters >= 1, f"{prefix}.iters", "must be >= 1")
        for name in ("gauss_sxy", "bilateral_sxy", "bilateral_srgb"):
            _require(getattr(self, name) > 0, f"{prefix}.{name}", "must be > 0")
        for name in ("gauss_compat", "bilateral_compat"):
            _require(getattr(self, name) >= 0, f"{prefix}.{name}", "must be >= 0")


@dataclass(frozen=True)
class SaliencyParams:
    """Salient-object network on C^2AM cues, and WS-AVS Eq. 6 (stage saliency)."""

    # cues at 0.7 of the frame's maximum, lr 3e-3 (docs/BENCHMARKS.md, session 23)
    train: TrainingParams = field(default_factory=lambda: TrainingParams(lr=3e-3))
    cue_threshold: float = 0.7
    cue_crf: CRFParams = field(default_factory=lambda: CRFParams(bilateral_sxy=50.0, bilateral_srgb=5.0))

    def validate(self, prefix: str) -> None:
        self.train.validate(f"{prefix}.train")
        _require(0 < self.cue_threshold < 1, f"{prefix}.cue_threshold", "must be in (0, 1)")
        self.cue_crf.validate(f"{prefix}.cue_crf")


@dataclass(frozen=True)
class PAMRParams:
    """PAMR on the fused coarse map (stage pamr)."""

    fusion: Literal["av", "objectness", "av_gated", "val"] = "val"
    coarse: Literal["fused", "val"] = "val"
    gate_ratio: float = 0.5
    power: float = 2.0
    iters: int = 30
    dilations: tuple[int, ...] = (1, 2, 4, 8, 12, 24)
    size: int = 64

    def validate(self, prefix: str) -> None:
        _require(0 < self.gate_ratio <= 1, f"{prefix}.gate_ratio", "must be in (0, 1]")
        _require(self.power > 0, f"{prefix}.power", "must be > 0 (1 = the min-max map as it is)")
        _require(self.iters >= 0, f"{prefix}.iters", "must be >= 0")
        _require(len(self.dilations) >= 1 and all(d >= 1 for d in self.dilations), f"{prefix}.dilations",
                 "must be a non-empty list of integers >= 1")
        _require(self.size >= 8, f"{prefix}.size", "must be >= 8")


@dataclass(frozen=True)
class AffinityParams:
    """Tri-map, affinity network and random walk (USPL SMR; stage affinity)."""

    train: TrainingParams = field(default_factory=TrainingParams)
    beta_low: float = 0.4
    beta_high: float = 0.55
    radius: int = 7
    beta: float = 10.0
    t: int = 8
    size: int = 32
    dim: int = 64
    distance: Literal["mean", "sum"] = "mean"
    walk_on: Literal["pamr", "coarse"] = "pamr"
    upsample: Literal["residual", "bilinear"] = "residual"
    rescale: Literal["max", "none"] = "max"
    max_growth: float = 3.0
    choose: Literal["fixed", "val"] = "val"
    val_betas: tuple[float, ...] = (5.0, 10.0, 20.0)
    val_steps: tuple[int, ...] = (0, 1, 2, 4, 8)

    def validate(self, prefix: str) -> None:
        self.train.validate(f"{prefix}.train")
        _require(len(self.val_betas) >= 1 and all(b > 0 for b in self.val_betas), f"{prefix}.val_betas",
                 "must be one or more numbers > 0")
        _require(len(self.val_steps) >= 1 and all(t >= 0 for t in self.val_steps), f"{prefix}.val_steps",
                 "must be one or more integers >= 0")
        _require(0 < self.beta_low < 1, f"{prefix}.beta_low", "must be in (0, 1)")
        _require(0 < self.beta_high < 1, f"{prefix}.beta_high", "must be in (0, 1)")
        _require(self.beta_low < self.beta_high, f"{prefix}.beta_low",
                 f"beta_low={self.beta_low} must be below beta_high={self.beta_high}")
        _require(self.radius >= 1, f"{prefix}.radius", "must be >= 1")
        _require(self.beta > 0, f"{prefix}.beta", "must be > 0")
        _require(self.t >= 0, f"{prefix}.t", "must be >= 0")
        _require(self.size >= 8, f"{prefix}.size", "must be >= 8")
        _require(self.dim >= 4, f"{prefix}.dim", "must be >= 4")
        _require(self.max_growth == 0 or self.max_growth >= 1, f"{prefix}.max_growth", "must be 0 (off) or >= 1")
        _require(self.rescale == "max" or self.max_growth == 0, f"{prefix}.max_growth",
                 f"bounds the rescaled walk (rescale: max) and does nothing with rescale: {self.rescale}; "
                 f"set {prefix}.max_growth=0 too")


@dataclass(frozen=True)
class SegParams:
    """Segmentation training on pseudo masks (stage train_seg)."""

    supervision: Literal["pseudo", "none", "full"] = "pseudo"
    baselines: tuple[str, ...] = ("none", "full")
    model: Literal["unet", "avsbench"] = "unet"
    image_size: int = 64
    fusion: Literal["tpavi", "coarse_map"] = "tpavi"
    init_from_alignment: bool = True
    width: int = 16
    steps: int = 400
    val_every: int = 100
    batch_size: int = 16
    lr: float = 2e-3
    head_lr_mult: float = 1.0
    weight_decay: float = 1e-4
    ema: float = 0.99
    lambda_avf: float = 0.1
    balanced_bce: bool = False
    tau: float = 0.03
    augment: bool = True
    crop_scale: float = 1.0  # random zoom crops: side ~ U[crop_scale, 1] of the frame (with augment)
    map_input: Literal["none", "coarse", "pamr"] = "pamr"  # unet: which of pamr's maps is a 4th input channel
    full_map_input: Literal["same", "none", "val"] = "val"  # the full-supervision bound's channel (train_seg.map_input_choices)
    seed: int = 0
    resume: bool = False  # continue an interrupted run from data/checkpoints/train_seg.<mode>.resume.pt

    def validate(self, prefix: str) -> None:
        _require(set(self.baselines) <= {"pseudo", "none", "full"} and len(set(self.baselines)) == len(self.baselines)
                 and self.supervision not in self.baselines, f"{prefix}.baselines",
                 "must be distinct values among pseudo, none, full, other than seg.supervision")
        _require(self.width >= 8 and self.width % 2 == 0, f"{prefix}.width", "must be an even number >= 8")
        _require(self.image_size >= 16 and self.image_size % 8 == 0, f"{prefix}.image_size",
                 f"{self.image_size} is not a multiple of 8 >= 16 (the U-Net halves it three times)")
        _require(0 <= self.ema < 1, f"{prefix}.ema", "must be in [0, 1) (0 = no weight averaging)")
        _require(self.steps >= 1, f"{prefix}.steps", "must be >= 1")
        _require(self.val_every >= 1, f"{prefix}.val_every", "must be >= 1")
        _require(self.batch_size >= 2, f"{prefix}.batch_size", "must be >= 2 (frames for unet, videos for avsbench)")
        _require(self.lr > 0, f"{prefix}.lr", "must be > 0")
        _require(self.weight_decay >= 0, f"{prefix}.weight_decay", "must be >= 0")
        _require(self.head_lr_mult > 0, f"{prefix}.head_lr_mult", "must be > 0")
        _require(self.lambda_avf >= 0, f"{prefix}.lambda_avf", "must be >= 0")
        _require(self.tau > 0, f"{prefix}.tau", "must be > 0")
        _require(0 < self.crop_scale <= 1, f"{prefix}.crop_scale", "must be in (0, 1] (1 = no random crops)")
        _require(self.map_input == "none" or self.model == "unet", f"{prefix}.map_input",
                 f"{self.map_input} is for seg.model=unet: add -S seg.map_input=none (the avsbench network takes "
                 "the coarse map through seg.fusion=coarse_map)")
        _require(self.seed >= 0, f"{prefix}.seed", "must be >= 0")


@dataclass(frozen=True)
class EvalParams:
    """Benchmark evaluation (stage evaluate)."""

    batch_frames: int = 20
    qualitative_videos: int = 4

    def validate(self, prefix: str) -> None:
        _require(self.batch_frames >= 1, f"{prefix}.batch_frames", "must be >= 1 (20 = the official protocol)")
        _require(self.qualitative_videos >= 1, f"{prefix}.qualitative_videos", "must be >= 1")


@dataclass(frozen=True)
class ComputeParams:
    """How the stages use the machine (stage ``cmd``s read ``nproc`` through ``stages.launch``)."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = "127.0.0.1:29500"
    amp: bool = True
    channels_last: bool = True
    map_workers: int = 1

    @property
    def world(self) -> int:
        """Processes per training stage, all machines together."""
        return self.nproc * self.nnodes

    def validate(self, prefix: str) -> None:
        _require(1 <= self.nproc <= 64, f"{prefix}.nproc", "must be in 1..64 (processes per training stage)")
        _require(1 <= self.nnodes <= 1024, f"{prefix}.nnodes", "must be in 1..1024 (machines per training stage)")
        _require(0 <= self.node_rank < self.nnodes, f"{prefix}.node_rank",
                 f"{self.node_rank} must be in 0..{self.nnodes - 1} (compute.nnodes={self.nnodes})")
        host, _, port = self.rdzv_endpoint.rpartition(":")
        _require(bool(host) and port.isdigit() and 0 < int(port) < 65536, f"{prefix}.rdzv_endpoint",
                 f"{self.rdzv_endpoint!r} must be host:port (node 0's address and a free port)")
        _require(self.map_workers >= 0, f"{prefix}.map_workers", "must be >= 0 (0 = one per core)")


@dataclass(frozen=True)
class BaseParams:
    """Settings shared by every stage."""

    seed: int = 0
    on_chance: Literal["warn", "error"] = "warn"  # a training stage at chance level: WARNING, or stop

    def validate(self, prefix: str) -> None:
        _require(self.seed >= 0, f"{prefix}.seed", "must be >= 0")


@dataclass(frozen=True)
class PathsParams:
    """Where the stages write, relative to the project. ``dvc.yaml`` declares its outputs as
    ``${paths.*}`` and the stages pass these to the library, so this section is the one place a
    path is written down."""

    synthetic: str = "data/avsbench_synthetic"  # the embedded dataset (synthesize)
    manifest: str = "data/manifest.tsv"
    prepared: str = "data/prepared"
    spectrograms: str = "data/spectrograms"
    align_model: str = "models/align.pt"
    align: str = "data/align"
    c2am: str = "data/pseudo/c2am"
    saliency: str = "data/pseudo/saliency"
    pamr: str = "data/pseudo/pamr"
    affinity: str = "data/pseudo/affinity"
    crf: str = "data/pseudo/crf"
    seg: str = "data/seg"
    seg_models: str = "models/seg"
    checkpoints: str = "data/checkpoints"  # resume states of interrupted training (not a DVC output)
    reports: str = "reports"

    def __getitem__(self, name: str) -> Path:
        return Path(getattr(self, name))

    def validate(self, prefix: str) -> None:
        seen = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _require(bool(value) and not Path(value).is_absolute() and ".." not in Path(value).parts,
                     f"{prefix}.{f.name}", f"{value!r} must be a non-empty path inside the project (DVC outputs are)")
            _require(value not in seen, f"{prefix}.{f.name}", f"{value!r} is also {prefix}.{seen.get(value)}")
            seen[value] = f.name


@dataclass(frozen=True)
class Params:
    base: BaseParams = field(default_factory=BaseParams)
    data: DataParams = field(default_factory=DataParams)
    audio: AudioParams = field(default_factory=AudioParams)
    alignment: AlignmentParams = field(default_factory=AlignmentParams)
    c2am: C2AMParams = field(default_factory=C2AMParams)
    saliency: SaliencyParams = field(default_factory=SaliencyParams)
    pamr: PAMRParams = field(default_factory=PAMRParams)
    affinity: AffinityParams = field(default_factory=AffinityParams)
    crf: CRFParams = field(default_factory=CRFParams)
    seg: SegParams = field(default_factory=SegParams)
    eval: EvalParams = field(default_factory=EvalParams)
    compute: ComputeParams = field(default_factory=ComputeParams)
    paths: PathsParams = field(default_factory=PathsParams)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate(f.name)
        _require(self.data.source == "avsbench" or self.data.root == self.paths.synthetic, "data.root",
                 f"with data.source=synthetic the dataset is generated in paths.synthetic={self.paths.synthetic}; "
                 f"set data.source=avsbench to read {self.data.root}")
        n, nproc, nnodes = self.compute.world, self.compute.nproc, self.compute.nnodes
        for key, batch in (("alignment.batch_size", self.alignment.batch_size), ("seg.batch_size", self.seg.batch_size),
                           *((f"{s}.train.batch_size", getattr(self, s).train.batch_size)
                             for s in ("c2am", "saliency", "affinity"))):
            _require(batch % n == 0, key, f"{batch} is not divisible by compute.nproc={nproc}"
                     + (f" x compute.nnodes={nnodes} = {n} processes" if nnodes > 1 else "")
                     + " (each process takes an equal share)")
        _require(self.alignment.image_size <= self.data.image_size, "alignment.image_size",
                 f"{self.alignment.image_size} exceeds data.image_size={self.data.image_size}")
        if self.data.source == "synthetic":
            videos = self.data.synthetic.videos_train
            _require(self.alignment.batch_size <= videos, "alignment.batch_size",
                     f"{self.alignment.batch_size} is larger than the training split ({videos} videos)")
            _require(self.seg.batch_size <= videos, "seg.batch_size",
                     f"{self.seg.batch_size} is larger than the training split ({videos} videos)")
            for name in ("c2am", "saliency", "affinity"):
                bs = getattr(self, name).train.batch_size
                _require(bs <= 5 * videos, f"{name}.train.batch_size",
                         f"{bs} is larger than the training split ({5 * videos} frames)")

    def section_dict(self, name: str) -> dict[str, Any]:
        """The section as plain data (for HDF5 attributes and logs)."""
        return dataclasses.asdict(getattr(self, name))


# ---------------------------------------------------------------------------------------------
# Casting plain YAML data into the dataclasses


def _cast(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        _require(value in choices, key, f"{value!r} is not one of {list(choices)}")
        return value
    if dataclasses.is_dataclass(tp):
        _require(isinstance(value, dict), key, f"expected a mapping, got {type(value).__name__}")
        return _build(tp, value, key)
    if origin in (tuple, list):
        _require(isinstance(value, (list, tuple)), key, f"expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_cast(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        _require(isinstance(value, bool), key, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ParamError(key, f"expected an integer, got {value!r}") from None
        _require(isinstance(value, int) and not isinstance(value, bool), key,
                 f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ParamError(key, f"expected a number, got {value!r}") from None
        _require(isinstance(value, (int, float)) and not isinstance(value, bool), key,
                 f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        _require(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported parameter type {tp} for {key}")


# keys that were renamed: the error for the old name says what replaced it
RENAMED = {"seg.coarse_input": "seg.map_input (none | coarse | pamr; true was coarse)"}


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        key = f"{prefix}.{k}" if prefix else str(k)
        _require(k in names, key, f"renamed to {RENAMED[key]}" if key in RENAMED
                 else f"unknown key (known: {', '.join(sorted(names))})")
    kwargs = {k: _cast(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def params_from_dict(data: dict | None) -> Params:
    """Validate a parsed ``params.yaml`` into :class:`Params`. Missing keys take defaults."""
    params = _build(Params, data or {}, "")
    params.validate()
    return params


def load_params(path: str | Path) -> Params:
    """Read and validate ``params.yaml``; raises :class:`ParamError` naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamError("<file>", f"{path} does not exist")
    with path.open() as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ParamError("<file>", f"{path} is not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ParamError("<file>", f"{path} must hold a mapping of sections")
    return params_from_dict(data)


def recorded(section: Any) -> dict:
    """``asdict(section)`` without the ``resume`` switches: what outputs record and resume states
    are keyed by, so a resumed run writes the same bytes as an uninterrupted one."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "resume"}
        return value
    return strip(dataclasses.asdict(section))
