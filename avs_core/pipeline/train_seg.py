"""Stage logic for ``train_seg``: the segmentation network trained on pseudo masks (and baselines).

Networks (``seg.model``):

* ``unet`` (default): :class:`~avs_core.models.unet.AudioUNet` at ``seg.image_size``, one frame
  at a time, conditioned on the frame's audio embedding from the *frozen* ``align`` audio encoder
  (computed once per frame, :func:`audio_embeddings`). A batch is ``seg.batch_size`` frames.
* ``avsbench``: the AVSBench network (ResNet + ASPP + TPAVI / SPS + RefineNet decoder), whole
  videos of T frames at ``data.image_size``, its encoders started from ``align``. A batch is
  ``seg.batch_size`` videos; it adds ``lambda_avf`` x L_avf (WS-AVS Eq. 8), the M^2ICL loss on
  the middle frame of each video.

Losses per supervision mode (targets come from ``avs_core.supervision``):

* ``pseudo``: BCE against the CRF pseudo masks on every frame.
* ``full``: BCE against ground truth where annotated (S4: frame 1) - the upper bound.
* ``none``: AVS(ws): no mask. The predicted mask pools the network's features, a linear classifier
  on the pooled vector must predict the video's category (cross-entropy); without categories
  (MS3) nothing but L_avf remains, so this baseline needs ``seg.model=avsbench`` there.

Every model is trained with warm-up + cosine lr, horizontal flips, and (``seg.ema`` > 0) an
exponential moving average of its weights, which is what is validated, kept and predicted with.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avs_core.config import AlignmentParams, SegParams, recorded, require_batch_fits
from avs_core.data.splits import SplitArrays
from avs_core.engine.checkpoint import load
from avs_core.engine.distributed import SINGLE, DistInfo, gather_keep_local
from avs_core.engine.loop import LoopSpec, StepLoss
from avs_core.engine.loop import train as engine_train
from avs_core.losses.contrastive import m2icl_loss
from avs_core.maps import to_logits
from avs_core.metrics import frame_iou
from avs_core.models.encoders import AudioEncoder, normalize_images
from avs_core.models.segmentation import AVSegmenter
from avs_core.models.unet import AudioUNet
from avs_core.data.maps import read_maps
from avs_core.supervision import Targets



def build_model(p: SegParams, a: AlignmentParams, frames: int, align_checkpoint) -> nn.Module:
    if p.model == "unet":
        return AudioUNet(a.dim, p.width, in_channels=3 if p.map_input == "none" else 4)
    model = AVSegmenter(a.backbone, a.dim, p.width, frames, p.fusion, audio_freq_pool=a.audio_freq_pool)
    if p.init_from_alignment:
        ckpt = load(align_checkpoint)
        model.visual.load_state_dict(ckpt["visual"])
        model.audio.load_state_dict(ckpt["audio"])
    return model


@torch.no_grad()
def audio_embeddings(align_checkpoint, a: AlignmentParams, split: SplitArrays, batch: int = 64) -> np.ndarray:
    """``[V, T, D]`` float32: every frame's audio through the frozen ``align`` audio encoder."""
    encoder = AudioEncoder(a.backbone, a.dim, freq_pool=a.audio_freq_pool)
    encoder.load_state_dict(load(align_checkpoint)["audio"])
    encoder.eval()
    spec = torch.from_numpy(split.audio).flatten(0, 1)  # [V*T, 1, F, Tt]
    out = torch.cat([encoder(spec[i:i + batch]) for i in range(0, len(spec), batch)])
    return out.view(*split.audio.shape[:2], -1).numpy()


class InputMaps:
    """One of ``pamr``'s maps of one split (``pamr_maps``: its ``{split}.h5``), read per batch as the
    U-Net's 4th input channel (``seg.map_input``): ``maps[vids, ks]`` -> ``[N, S, S]`` float32 in [0, 1]
    for ``[N]`` video and frame indices.

    ``key`` is ``coarse`` (the coarse map PAMR refined, min-max normalised per frame) or ``pamr`` (PAMR's
    output). Both are ``pamr``'s copies rather than ``align``'s fused map: with ``pamr.coarse: val``
    they differ, and the network should read the map its labels were refined from, not the stages
    left out for scoring badly (on ``flat``, stages 2-3 of ``align`` pair each sound with another
    category's object). Either is computed from the frame and its audio alone, so test frames have it
    too. Read per batch, not held: the three splits' float32 maps are 4.6 GiB at AVSBench size and 224 px.
    """

    def __init__(self, pamr_maps, key: str):
        self.path, self.key = pamr_maps, key
        read_maps(pamr_maps, key, 0, 0)  # a missing dataset fails here, before any training

    def __getitem__(self, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        vids, ks = (np.asarray(i) for i in index)
        uniq, row = np.unique(vids, return_inverse=True)
        return read_maps(self.path, self.key, videos=uniq)[row, ks]  # [N, S, S]: each video read once


def input_maps(p: SegParams, pamr_dir, split: str) -> InputMaps | None:
    """What ``seg.map_input`` asks ``split`` to read from ``pamr``'s output folder, or None (``none``)."""
    return None if p.map_input == "none" else InputMaps(pamr_dir / f"{split}.h5", p.map_input)


def map_input_choices(p: SegParams, mode: str) -> tuple[str, ...]:
    """The 4th input channels (``seg.map_input`` values) a ``mode`` model is trained with; the stage
    keeps the one whose model scores best on validation (the first on a tie).

    Only the full-supervision bound has a choice (``seg.full_map_input``): it is the best a network
    can learn from ground truth, and the map it would read is a weak-supervision product. PAMR's map
    lifted it on S4 and held it down on MS3, where it is poorer (test mIoU, map / none: `textured`
    S4 0.836 / 0.797, `flat` S4 0.695 / 0.438; `shapes` MS3 0.554 / 0.597, `flat` MS3 0.297 / 0.363;
    docs/BENCHMARKS.md, session 32). The headline and AVS(ws) always read ``seg.map_input``."""
    if mode != "full" or p.full_map_input == "same":
        return (p.map_input,)
    if p.full_map_input == "none":
        return ("none",)
    return tuple(dict.fromkeys((p.map_input, "none")))


class SegData:
    """One split as the network reads it: ``inputs(vids, ks, flip, crop)`` gives its forward arguments.

    With ``maps`` (``seg.map_input``) the frame's coarse or PAMR map is a fourth input channel, so the
    network refines the audio-visual map it is given instead of finding the sounding object from
    the audio embedding alone.
    """

    def __init__(self, split: SplitArrays, p: SegParams, audio: np.ndarray | None, maps: np.ndarray | None = None):
        self.split, self.p, self.audio = split, p, audio  # audio: [V, T, D] (unet) or None (spectrograms)
        self.maps = maps  # [V, T, S, S] float32 in [0, 1] (an array or InputMaps; seg.map_input) or None

    @property
    def temporal(self) -> bool:
        return self.p.model == "avsbench"

    def inputs(self, vids: np.ndarray, ks: np.ndarray, flip: torch.Tensor | None, crop: torch.Tensor | None = None):
        """``crop``: ``[N, 2, 3]`` from :func:`random_crops`, applied after the flip and the resize."""
        images = normalize_images(torch.from_numpy(self.split.frames[vids, ks]))  # [N, 3, S, S]
        if self.maps is not None:
            maps = torch.from_numpy(self.maps[vids, ks])[:, None]  # [N, 1, S, S]
            images = torch.cat([images, (maps - 0.5) / 0.25], dim=1)
        if flip is not None:
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        if not self.temporal and images.shape[-1] != self.p.image_size:
            images = F.interpolate(images, size=(self.p.image_size,) * 2, mode="bilinear", align_corners=False,
                                   antialias=True)
        if crop is not None:
            images = apply_crops(images, crop)
        audio = self.audio[vids, ks] if not self.temporal else self.split.audio[vids, ks]
        return images, torch.from_numpy(audio)


def random_crops(n: int, crop_scale: float, generator: torch.Generator) -> torch.Tensor:
    """``[n, 2, 3]`` affine maps: a square crop of side ``s`` ~ U[crop_scale, 1] (fraction of the
    frame side) at a uniform position inside the frame, zoomed back to the full size."""
    s = crop_scale + (1 - crop_scale) * torch.rand(n, generator=generator)
    shift = (1 - s)[:, None] * (2 * torch.rand(n, 2, generator=generator) - 1)  # [n, 2] (x, y), crop stays inside
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s, s, shift
    return theta


def apply_crops(x: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """``x [N, C, H, W]`` float resampled (bilinear) through :func:`random_crops`' maps, same size."""
    grid = F.affine_grid(crop.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _frames_of(videos: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(videos, t), np.tile(np.arange(t), len(videos))


@torch.no_grad()
def predict(model: nn.Module, data: SegData, batch_videos: int = 8, dist: DistInfo = SINGLE):
    """Yield ``(start, prob [n, T, s, s] float32)`` over a split (computed on ``dist.device``)."""
    model.eval()
    n, t = data.split.frames.shape[:2]
    for start in range(0, n, batch_videos):
        vids, ks = _frames_of(np.arange(start, min(start + batch_videos, n)), t)
        images, audio = data.inputs(vids, ks, None)
        with dist.autocast():
            logits = model(dist.inputs(images), audio.to(dist.device))["logits"]
        prob = torch.sigmoid(logits.float())[:, 0].cpu()
        yield start, prob.view(-1, t, *prob.shape[-2:]).numpy()


def val_miou(model: nn.Module, data: SegData, masks: np.ndarray, dist: DistInfo = SINGLE) -> float:
    """Validation mIoU against the validation split's ground truth ``masks`` ``[V, T, H0, W0]``
    (annotated frames), scored one prediction batch at a time: upsampling the whole split at once
    held gigabytes at AVSBench size."""
    annotated = data.split.annotated  # [V, T] bool
    iou_sum, frames = 0.0, 0
    for start, probs in predict(model, data, dist=dist):  # [n, T, s, s]
        keep = annotated[start:start + len(probs)]
        if not keep.any():
            continue
        logits = to_logits(probs[keep], masks.shape[-2:], "prob")  # [m, H0, W0]: as `evaluate` scores them
        gt = torch.from_numpy(masks[start:start + len(probs)][keep]).float()  # [m, H0, W0]
        iou = frame_iou(logits, gt)
        iou_sum += float(iou.double().sum())
        frames += len(iou)
    return iou_sum / frames if frames else float("nan")


class WeakClassifier(nn.Module):
    """AVS(ws): mask-pooled features -> category logits."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        weight = F.adaptive_avg_pool2d(torch.sigmoid(logits), features.shape[-2:])  # [N, 1, h, w]
        pooled = (weight * features).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + 1e-6)
        return self.fc(pooled)


def training_units(targets: Targets, temporal: bool) -> np.ndarray:
    """What one batch entry is: a video (temporal network) or a supervised frame ``(v, k)``.

    Returns ``[U]`` video indices (temporal) or ``[U, 2]`` (video, frame) pairs; ``full`` keeps only
    annotated frames, so no step is spent on frames without a target.
    """
    v, t = targets.weights.shape
    if temporal:
        return np.arange(v)
    if targets.mode == "none":
        return np.stack(_frames_of(np.arange(v), t), axis=1)
    return np.argwhere(targets.weights > 0)


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, balanced: bool) -> torch.Tensor:
    """Per-frame BCE of ``[N, s, s]`` logits, averaged with frame weights ``[N]``; ``balanced``
    weights the foreground by neg/pos so the uninformed optimum is logit 0, not the fg prior."""
    pos_weight = None
    if balanced:
        pos = (target * weight[:, None, None]).sum()
        neg = ((1 - target) * weight[:, None, None]).sum()
        pos_weight = (neg / pos.clamp_min(1.0)).clamp(1.0, 100.0)
    per_frame = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight).mean(dim=(1, 2))
    return (per_frame * weight).sum() / weight.sum().clamp_min(1)


def train(model: nn.Module, train_data: SegData, targets: Targets, val_data: SegData, val_masks: np.ndarray,
          p: SegParams, on_log=None, dist: DistInfo = SINGLE, start: dict | None = None) -> dict:
    """``seg.steps`` steps on the engine loop, validated every ``seg.val_every``; leaves the
    best-on-validation (EMA) weights in ``model`` and returns their step and mIoU.
    ``on_log(step, metrics, state)`` at every validation; ``start``, such a ``state``, resumes.

    Under torchrun each process takes its share of every batch. The per-frame terms are means over
    that share (DDP averages them); the L_avf term contrasts the whole batch, so it is gathered (see
    ``avs_core.engine.loop``).
    """
    split = train_data.split
    temporal = train_data.temporal
    units = training_units(targets, temporal)
    require_batch_fits("seg.batch_size", p.batch_size, len(units), "videos" if temporal else "supervised frames")
    t = split.frames.shape[1]
    use_class = targets.mode == "none" and split.has_categories
    clf = WeakClassifier(model.feature_channels, len(split.category_names)) if use_class else None
    if targets.masks is None and clf is None and not (temporal and p.lambda_avf > 0):
        raise ValueError(f"train_seg[{targets.mode}]: no training signal (no masks, no categories and no L_avf)")
    net = WithClassifier(model, clf)
    encoders = {id(q) for m in (getattr(model, "visual", None), getattr(model, "audio", None)) if m is not None
                for q in m.parameters()}
    groups = [{"params": [q for q in net.parameters() if id(q) not in encoders], "lr": p.lr * p.head_lr_mult}]
    if encoders:  # started from align
        groups.append({"params": [q for q in model.parameters() if id(q) in encoders], "lr": p.lr})
    opt = torch.optim.AdamW(groups, weight_decay=p.weight_decay)
    spec = LoopSpec(f"train_seg[{targets.mode}]", "seg.lr", p.steps, p.val_every,
                    min(p.steps // 10, len(units) // p.batch_size), p.ema)
    masks = None if targets.masks is None else torch.from_numpy(targets.masks)
    weights = torch.from_numpy(targets.weights)
    labels = torch.from_numpy(split.labels.astype(np.int64))

    def batch_at(i: int):
        chosen = unit_batch(units, p.batch_size, i, p.seed)
        flip = crop = None
        if p.augment:
            gen = torch.Generator().manual_seed(p.seed * 100_003 + i)
            flip = torch.rand(len(chosen), generator=gen) < 0.5
            crop = random_crops(len(chosen), p.crop_scale, gen) if p.crop_scale < 1 else None
        mine = torch.from_numpy(dist.local(np.arange(len(chosen)), "seg.batch_size"))
        chosen = chosen[mine.numpy()]
        flip, crop = (None if x is None else x[mine] for x in (flip, crop))
        if temporal:  # one draw per video
            vids, ks = _frames_of(chosen, t)
            flip, crop = (None if x is None else x.repeat_interleave(t, dim=0) for x in (flip, crop))
        else:
            vids, ks = chosen[:, 0], chosen[:, 1]
        return len(chosen), vids, ks, flip, crop

    def step(m, batch):
        n, vids, ks, flip, crop = batch
        images, audio = train_data.inputs(vids, ks, flip, crop)
        out = m(dist.inputs(images), audio.to(dist.device))
        logits = out["logits"].float()[:, 0]  # [N, s, s]
        loss = logits.new_zeros(())
        if masks is not None:
            target = F.interpolate(masks[vids, ks][:, None].float(), size=logits.shape[-2:], mode="area")[:, 0]
            if flip is not None:
                target = torch.where(flip.view(-1, 1, 1), target.flip(-1), target)
            if crop is not None:
                target = apply_crops(target[:, None], crop)[:, 0]
            target = (target >= 0.5).float()
            loss = loss + balanced_bce(logits, target.to(dist.device), weights[vids, ks].to(dist.device),
                                       p.balanced_bce)
        if "class_logits" in out:
            loss = loss + F.cross_entropy(out["class_logits"].float(), labels[vids].to(dist.device))
        coupled = loss.new_zeros(())
        if temporal and p.lambda_avf > 0:
            mid = torch.arange(n) * t + t // 2  # one frame per video
            a = gather_keep_local(out["audio"][mid].float())
            coupled = p.lambda_avf * m2icl_loss(a, [gather_keep_local(v[mid].float()) for v in out["visual"]], p.tau)
        return StepLoss(loss, coupled)

    best = dict(start["best"]) if start is not None else {"miou": -1.0}

    def validate(kept: WithClassifier) -> dict:
        score = val_miou(kept.model, val_data, val_masks, dist)
        if score > best["miou"]:
            best.update(miou=score, state={k: v.detach().cpu().clone() for k, v in kept.model.state_dict().items()})
        return {"val_miou": score}

    def log_with_best(n: int, metrics: dict, state: dict) -> None:
        if on_log is not None:
            on_log(n, metrics, {**state, "best": dict(best)})

    history = engine_train(net, opt, spec, batch_at, step, dist, validate=validate, on_log=log_with_best, start=start)
    model.load_state_dict(best["state"])
    best_step = next(pt["step"] for pt in history["points"] if pt["val_miou"] == best["miou"])
    return {"supervision": targets.mode, "best_step": best_step, "val_miou": best["miou"], "params": recorded(p)}


class WithClassifier(nn.Module):
    """The segmentation network plus, for AVS(ws), the weak classifier on its mask-pooled features:
    one module, so the loop's DDP, EMA and optimiser see both."""

    def __init__(self, model: nn.Module, clf: nn.Module | None):
        super().__init__()
        self.model, self.clf = model, clf

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> dict:
        out = self.model(images, audio)
        if self.clf is not None:
            out = {**out, "class_logits": self.clf(out["logits"].float(), out["features"].float())}
        return out


def unit_batch(units: np.ndarray, batch: int, i: int, seed: int) -> np.ndarray:
    """The i-th batch of ``batch`` units: successive random permutations of all units (one per
    pass, seeded by the pass index), cut in batches; the incomplete tail of a permutation is dropped."""
    per_pass = len(units) // batch
    j = i % per_pass
    return units[np.sort(_pass_order(len(units), seed, i // per_pass)[j * batch:(j + 1) * batch])]


@functools.lru_cache(maxsize=4)
def _pass_order(n: int, seed: int, index: int) -> np.ndarray:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + index)).numpy()
