"""Stage logic for ``align``: M^2ICL / MMICL training and the coarse sounding maps.

Training reads frames and audio of the *train* split only; it never reads masks. Audio-frame
pairing (``alignment.audio_window``): ``frame`` pairs frame k with the 1 s of audio it is annotated
for (second k-1, see ``avs_core.audio.frame_windows``); ``centre`` / ``clip`` give every frame the
clip-level window, as WS-AVS does (3 s centred for training, the whole clip otherwise).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avs_core.config import AlignmentParams, require_batch_fits
from avs_core.data.splits import SplitArrays
from avs_core.engine.distributed import DistInfo, gather_keep_local
from avs_core.engine.loop import LoopSpec, StepLoss
from avs_core.engine.loop import train as engine_train
from avs_core.losses.contrastive import m2icl_chance, m2icl_loss, mil_similarity, prototype_loss
from avs_core.maps import fuse_scales
from avs_core.models.encoders import AudioEncoder, VisualEncoder, normalize_images
from avs_core.runtime import progress
from avs_core.store import create_h5, require_finite, write_strings


class AlignModel(nn.Module):
    """Visual + audio encoders; ``forward`` gives ``(a [B, D], [v_s [B, D, h_s, w_s] for s in scales], prototypes)``.

    ``prototypes`` ``[C, D]`` exist when the weak category labels are used (``classes > 1``).
    """

    def __init__(self, p: AlignmentParams, classes: int = 0):
        super().__init__()
        self.scales = tuple(p.scales)
        self.visual = VisualEncoder(p.backbone, p.dim, p.visual_weights, p.proj_dropout)
        self.audio = AudioEncoder(p.backbone, p.dim, p.audio_weights, p.audio_freq_pool)
        self.prototypes = nn.Parameter(torch.randn(classes, p.dim) * 0.1) if classes > 1 else None

    def forward(self, images: torch.Tensor, spec: torch.Tensor):
        """-> ``(a, [v_s], prototypes [C, D] L2-normalised or None)``; the prototypes come out of
        ``forward`` so that DDP sees them used."""
        protos = None if self.prototypes is None else F.normalize(self.prototypes, dim=1)
        return self.audio(spec), self.scale_maps(images), protos

    def scale_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images [B, 3, S, S]`` -> ``[v_s [B, D, h_s, w_s] for s in scales]`` (L2-normalised over D)."""
        maps = self.visual(images)
        return [maps[s - 1] for s in self.scales]


def epoch_batches(num_videos: int, num_frames: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Batches of ``(video, frame)`` pairs for one epoch.

    An epoch has ``num_frames`` rounds; each round visits every video once with a random frame, so
    the videos within a batch are distinct (no false negatives from the same clip). Incomplete
    last batches of a round are dropped.
    """
    rng = np.random.default_rng([seed, epoch])
    out = []
    for _ in range(num_frames):
        order = rng.permutation(num_videos)
        frames = rng.integers(0, num_frames, num_videos)
        pairs = np.stack([order, frames[order]], axis=1)
        out += [pairs[i:i + batch_size] for i in range(0, num_videos - batch_size + 1, batch_size)]
    return out


def augment(frames: torch.Tensor, size: int, generator: torch.Generator, enabled: bool) -> torch.Tensor:
    """uint8 ``[B, 3, S, S]`` -> normalised float ``[B, 3, size, size]``; with random resized crop
    (scale 0.6-1) and horizontal flip when ``enabled``."""
    x = normalize_images(frames)
    if not enabled:
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False) if x.shape[-1] != size else x
    out = []
    s = x.shape[-1]
    for img in x:
        scale = float(torch.empty(1).uniform_(0.6, 1.0, generator=generator))
        side = max(8, int(round(s * math.sqrt(scale))))
        top, left = (int(torch.randint(0, s - side + 1, (1,), generator=generator)) for _ in range(2))
        crop = img[:, top:top + side, left:left + side]
        if torch.rand(1, generator=generator) < 0.5:
            crop = crop.flip(-1)
        out.append(F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False)[0])
    return torch.stack(out)


@torch.no_grad()
def set_audio_centre(model: AlignModel, split: SplitArrays, weight: float, device, max_clips: int = 4096) -> float:
    """Set ``model.audio.centre`` to ``weight`` x the mean embedding of the split's clips (every
    frame's window; at most ``max_clips`` of them, evenly spaced). Returns the mean's norm.

    Why: the trained audio embeddings sit in a narrow cone (the norm of their mean was 0.84-0.93
    on the embedded styles; 1 would be one direction for every clip). Their shared direction scores
    every object alike, whatever sounds, so the coarse map with another video's audio kept half of
    the map's mIoU. Taking part of it off (``alignment.audio_centre``) leaves what tells one sound
    from another (docs/BENCHMARKS.md, session 30). The training split's audio only; no labels."""
    model.eval()
    v, t = split.audio.shape[:2]
    clips = np.unique(np.linspace(0, v * t - 1, min(max_clips, v * t)).round().astype(np.int64))
    total = torch.zeros_like(model.audio.centre)
    for i in range(0, len(clips), 64):
        idx = clips[i:i + 64]
        total += model.audio(torch.from_numpy(split.audio[idx // t, idx % t]).to(device)).float().sum(0)
    mean = total / len(clips)
    model.audio.centre.copy_(weight * mean)
    return float(mean.norm())


def region_embeddings(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mask-pooled embeddings: ``maps [B, D, h, w]`` averaged over ``masks [B, H0, W0]`` ({0, 1}, any
    size: area-resampled to ``h x w``) -> ``[B, D]`` L2-normalised (zero where a mask is empty)."""
    weights = F.interpolate(masks[:, None].float(), size=maps.shape[-2:], mode="area")  # [B, 1, h, w]
    pooled = (maps * weights).sum((2, 3)) / weights.sum((2, 3)).clamp_min(1e-6)  # [B, D]
    return F.normalize(pooled, dim=1)


@torch.no_grad()
def retrieval_top1(model: AlignModel, split: SplitArrays, p: AlignmentParams, device, masks: np.ndarray | None = None,
                   block: int = 64, audio_chunk: int = 256, scales: tuple[int, ...] | None = None) -> dict[str, float]:
    """Audio -> image and audio -> sounding-object retrieval over every frame of the split.

    Images are scored by the MIL similarity summed over ``scales`` (default: every trained scale;
    the stage also scores each stage alone), each frame's audio against all V x T frames. With
    ``masks`` (``[V, T, H0, W0]`` {0, 1}: the split's ground truth, validation only), each frame's
    sounding object is also a gallery item: the visual maps pooled inside its mask, scored by
    cosine similarity summed over scales.

    Why both: a frame that shows a *silent* object of the audio's category is as good an image
    match as a frame where that category sounds, so the image-level figure has a ceiling far below
    1 when most frames show silent objects (about 0.4-0.46 on the embedded styles: docs/BENCHMARKS.md).
    The object-level figure has no such ceiling: a model that knows what each category looks like
    and sounds like scores 1.

    Streams: images are encoded ``block`` frames at a time and scored against the audio in chunks
    of ``audio_chunk``, keeping only each audio's best item, so memory is O(V x T) rather than the
    [V T, V T, h, w] similarity volume (55 GB at AVSBench's 740 validation videos).

    Returns ``video`` (the best image is from the own video; chance 1/V), ``category`` (the best
    image is from a video of the same category; chance about 1/C) and ``object_category`` (the best
    sounding object is of the audio's category; chance about 1/C). NaN where categories (or masks)
    are unknown.
    """
    model.eval()
    scales = model.scales if scales is None else scales
    v, t = split.frames.shape[:2]
    n = v * t
    blocks = [np.arange(start, min(start + block, n)) for start in range(0, n, block)]
    audio = torch.cat([model.audio.query(torch.from_numpy(split.audio[idx // t, idx % t]).to(device))
                       for idx in blocks])  # [N, D]
    kinds = ("image", "object") if masks is not None else ("image",)
    best = {k: torch.full((n,), float("-inf"), device=device) for k in kinds}
    best_frame = {k: torch.zeros(n, dtype=torch.long, device=device) for k in kinds}
    for idx in blocks:
        images = augment(torch.from_numpy(split.frames[idx // t, idx % t]), p.image_size, None, False)
        maps = model.visual(images.to(device))
        scored = {"image": lambda rows: sum(mil_similarity(audio[rows], maps[s - 1]) for s in scales)}
        if masks is not None:
            block_masks = torch.from_numpy(masks[idx // t, idx % t]).to(device)  # [b, H0, W0]
            regions = [region_embeddings(maps[s - 1], block_masks) for s in scales]  # [b, D] each
            empty = block_masks.flatten(1).amax(1) == 0  # nothing sounds in view: not a gallery item
            scored["object"] = lambda rows: sum(audio[rows] @ r.T for r in regions).masked_fill(empty, float("-inf"))
        for a0 in range(0, n, audio_chunk):
            rows = slice(a0, min(a0 + audio_chunk, n))
            for kind, score_of in scored.items():
                score, j = score_of(rows).max(dim=1)  # [chunk]
                better = score > best[kind][rows]  # strict: ties keep the earlier frame, as argmax does
                best[kind][rows] = torch.where(better, score, best[kind][rows])
                best_frame[kind][rows] = torch.where(better, j + int(idx[0]), best_frame[kind][rows])
    own = np.arange(n) // t
    labels, known = split.labels, bool((split.labels >= 0).all())
    best_video = {k: best_frame[k].cpu().numpy() // t for k in kinds}
    same = {k: float((labels[best_video[k]] == labels[own]).mean()) if known else float("nan") for k in kinds}
    return {"video": float((best_video["image"] == own).mean()), "category": same["image"],
            "object_category": same.get("object", float("nan"))}


def uses_labels(p: AlignmentParams, split: SplitArrays) -> bool:
    """Weak labels are used when asked for and every training clip has one (S4; not MS3)."""
    return p.weak_labels and split.has_categories


def num_classes(p: AlignmentParams, split: SplitArrays) -> int:
    """Prototype count: the categories (weak labels), else ``audio_clusters``, else 0 (plain M^2ICL)."""
    return len(split.category_names) if uses_labels(p, split) else (p.audio_clusters if p.audio_clusters > 1 else 0)


def audio_cluster_labels(audio: np.ndarray, k: int, seed: int, iters: int = 50) -> np.ndarray:
    """Label-free stand-in for categories: k-means of every frame's audio.

    Without labels, instance discrimination on ~100 clips is solved by a shortcut (each clip's
    background matches its own audio's details), so the visual side never has to find the object.
    With the clusters as positives, clips of similar sound but different backgrounds must match,
    and only the object they share can do that.

    Args:
        audio: ``[V, T, 1, F, Tt]`` log spectrograms. Features: each frequency's mean and std over
            time, standardised.
    Returns:
        ``[V, T]`` int64 in ``[0, k)``; deterministic for a seed.
    """
    v, t = audio.shape[:2]
    spec = audio.reshape(v * t, audio.shape[-2], audio.shape[-1]).astype(np.float64)
    x = np.concatenate([spec.mean(-1), spec.std(-1)], axis=1)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):  # k-means++ seeding
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    centres = np.stack(centres)
    for _ in range(iters):
        assign = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return assign.reshape(v, t).astype(np.int64)


def training_labels(p: AlignmentParams, split: SplitArrays) -> np.ndarray | None:
    """``[V, T]`` labels of the label-aware loss: the category, the audio clusters, or None."""
    if uses_labels(p, split):
        return np.repeat(split.labels.astype(np.int64)[:, None], split.frames.shape[1], axis=1)
    if p.audio_clusters > 1:
        return audio_cluster_labels(split.audio, p.audio_clusters, p.seed)
    return None


def chance_loss(p: AlignmentParams, classes: int) -> float:
    """The training loss of a model that has learned nothing (all logits equal)."""
    chance = m2icl_chance(p.batch_size, len(p.scales))
    if classes > 1:
        chance += p.label_weight * (1 + len(p.scales)) * math.log(classes)
    return chance


def train(model: AlignModel, train_split: SplitArrays, val_split: SplitArrays, p: AlignmentParams,
          dist: DistInfo, on_log=None, start: dict | None = None,
          val_masks: np.ndarray | None = None) -> tuple[list[dict], AlignModel]:
    """``alignment.epochs`` epochs on the engine loop (warm-up over ``warmup_epochs``, then cosine;
    a log point, validation and resume state per epoch). ``on_log(step, metrics, state)`` is called on
    every process after each epoch (logging and resume checkpoints are the caller's business);
    ``start`` is such a ``state``. ``val_masks`` (the validation split's ground truth, ``[V, T, H0, W0]``)
    adds the audio -> sounding-object retrieval to each validation. Returns the metrics of every epoch
    and the model to keep: the weight EMA (``alignment.ema`` > 0; validated with), else ``model``.

    Loss per batch: M^2ICL, label-aware with :func:`training_labels` (categories, else audio
    clusters) + ``label_weight`` x the prototype heads.
    """
    require_batch_fits("alignment.batch_size", p.batch_size, len(train_split), "videos")
    device = dist.device
    frame_labels = training_labels(p, train_split)
    weak = frame_labels is not None
    classes = num_classes(p, train_split)
    if weak and (model.prototypes is None or len(model.prototypes) != classes):
        raise ValueError(f"the label-aware loss needs {classes} prototypes: build AlignModel(p, num_classes(p, split))")
    t = train_split.frames.shape[1]
    per_epoch = len(epoch_batches(len(train_split), t, p.batch_size, p.seed, 0))
    spec = LoopSpec("align", "alignment.lr", per_epoch * p.epochs, per_epoch, int(round(per_epoch * p.warmup_epochs)),
                    ema=p.ema)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    frames = torch.from_numpy(train_split.frames)
    audio = torch.from_numpy(train_split.audio)
    labels = torch.from_numpy(frame_labels) if weak else None
    chance = chance_loss(p, classes if weak else 0)
    plan = functools.lru_cache(maxsize=1)(lambda epoch: epoch_batches(len(train_split), t, p.batch_size, p.seed, epoch))

    def batch_at(i: int):
        batch = plan(i // per_epoch)[i % per_epoch]
        # every process draws the same augmentation stream and keeps its own slice
        images = augment(frames[batch[:, 0], batch[:, 1]], p.image_size, torch.Generator().manual_seed(p.seed * 100_003 + i),
                         p.augment)
        mine = dist.local(np.arange(len(batch)), "alignment.batch_size")
        return {"images": images[mine], "spec": audio[batch[mine, 0], batch[mine, 1]], "mine": mine,
                "labels": labels[batch[:, 0], batch[:, 1]] if weak else None,
                "drop": torch.Generator(device=device).manual_seed(p.seed * 100_003 + i + 1)}

    def step(m, b):
        a, vs, protos = m(dist.inputs(b["images"]), b["spec"].to(device))  # [b, D], [[b, D, h, w]], [C, D]
        a, vs = a.float(), [v.float() for v in vs]
        batch_labels = b["labels"].to(device) if weak else None
        coupled = m2icl_loss(gather_keep_local(a), [gather_keep_local(v) for v in vs], p.tau, p.mask_drop,
                             b["drop"], batch_labels)  # the global loss, on every process
        local = a.new_zeros(())
        if weak:  # per-sample terms: a mean over this process's share
            local = p.label_weight * prototype_loss(a, vs, protos.float(), batch_labels[b["mine"]], p.tau)
        return StepLoss(local, coupled)

    def validate(kept: AlignModel) -> dict:
        set_audio_centre(kept, train_split, p.audio_centre, device)
        retrieval = retrieval_top1(kept, val_split, p, device, val_masks)
        return {"loss_chance": chance, "val_top1_video": retrieval["video"], "val_top1_video_chance": 1 / len(val_split),
                "val_top1_category": retrieval["category"], "val_top1_object_category": retrieval["object_category"]}

    history = engine_train(model, opt, spec, batch_at, step, dist, validate=validate, on_log=on_log, start=start)
    return history["points"], history["kept"]


@torch.no_grad()
def coarse_maps(model: AlignModel, split: SplitArrays, p: AlignmentParams, out_size: int, device,
                audio_orders: tuple[np.ndarray | None, ...] = (None,), batch_videos: int = 8):
    """Cosine similarity of each frame's audio with each location (USPL Eq. 1), per scale and fused.

    Args:
        audio_orders: one set of maps per entry, all from one visual pass: ``None`` pairs each
            video with its own audio; an array ``o`` gives video v the audio of video ``o[v]``
            (the shuffled-audio baseline).

    Yields:
        ``(start, [(per_scale, fused) per entry of audio_orders])`` per chunk of videos:
        ``per_scale`` is a list of ``[n, T, h_s, w_s]`` float32 in [-1, 1], one per ``p.scales``;
        ``fused`` ``[n, T, out, out]`` is the mean of the ``p.map_scales`` maps upsampled bilinearly
        to ``out_size``. Why not every scale: stage 4 is a grid of a few cells (3 x 3 at 96 px,
        4 x 4 at 128) that each see the whole frame, so under the MIL max it learns *what* sounds,
        not *where* (its map shows the same position pattern in every frame, at the shuffled-audio
        control's mIoU); averaging it in lowered the coarse map's mIoU on every style
        (docs/BENCHMARKS.md, "Which scales make the coarse map").
    """
    model.eval()
    for start in range(0, len(split), batch_videos):
        vids = np.arange(start, min(start + batch_videos, len(split)))
        n, t = len(vids), split.frames.shape[1]
        images = augment(torch.from_numpy(split.frames[vids]).flatten(0, 1), p.image_size, None, False)
        vs = model.scale_maps(images.to(device))  # [n*T, D, h_s, w_s] each
        out = []
        for order in audio_orders:
            src = vids if order is None else order[vids]
            a = model.audio.query(torch.from_numpy(split.audio[src]).flatten(0, 1).to(device))  # [n*T, D]
            per_scale = [torch.einsum("bd,bdhw->bhw", a, v).cpu() for v in vs]  # [n*T, h, w]
            fused = fuse_scales([m for s, m in zip(p.scales, per_scale) if s in p.map_scales], out_size)
            out.append(([m.view(n, t, *m.shape[-2:]).numpy() for m in per_scale],
                        fused.view(n, t, out_size, out_size).numpy()))
        yield start, out


def shuffled_audio_order(num_videos: int, labels: np.ndarray, seed: int) -> np.ndarray:
    """A derangement that gives each video the audio of a video of another category where one exists."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_videos)
    for i in range(num_videos):
        if order[i] == i or (labels[order[i]] == labels[i] and labels[i] >= 0):
            for j in rng.permutation(num_videos):
                if j != i and (labels[j] != labels[i] or labels[i] < 0):
                    order[i] = j
                    break
    return order


def write_maps(model: AlignModel, splits: dict[str, SplitArrays], p: AlignmentParams, out_size: int,
               out_dir, device, attrs: dict) -> None:
    """Coarse maps of every frame of every split, with own and shuffled audio, to ``{split}.h5``.

    File layout: ``ids`` [V]; ``fused`` / ``fused_shuffled`` [V, T, S, S] float32 in [-1, 1];
    ``scale{s}`` [V, T, h_s, w_s] float32 at the stage's native resolution (upsample bilinearly).
    """
    for name, split in splits.items():
        order = shuffled_audio_order(len(split), split.labels, p.seed)
        with create_h5(out_dir / f"{name}.h5", stage="align", split=name, **attrs) as fh:
            write_strings(fh, "ids", split.ids)
            t = split.frames.shape[1]
            shape = (len(split), t, out_size, out_size)
            fused = fh.create_dataset("fused", shape=shape, dtype="f4", chunks=(1, t, out_size, out_size))
            shuffled = fh.create_dataset("fused_shuffled", shape=shape, dtype="f4", chunks=(1, t, out_size, out_size))
            scale_ds = {}
            chunks = coarse_maps(model, split, p, out_size, device, (None, order))
            for start, ((per_scale, own), (_, other)) in progress(chunks, desc=f"coarse maps {name}"):
                stop = start + len(own)
                for key, values in (("fused", own), ("fused_shuffled", other)):
                    require_finite(values, split.ids[start:stop], f"coarse maps '{key}' ({name})",
                                   "the alignment model diverged: see reports/align, lower alignment.lr")
                fused[start:stop], shuffled[start:stop] = own, other
                for s, m in zip(p.scales, per_scale):
                    if s not in scale_ds:
                        scale_ds[s] = fh.create_dataset(f"scale{s}", shape=(len(split), t, *m.shape[-2:]), dtype="f4")
                    scale_ds[s][start:stop] = m
