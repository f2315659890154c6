"""Read the packed splits (``prepare``) and their audio features (``spectrograms``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avs_core.store import StoreError, open_h5, read_strings

AUDIO_WINDOWS = {"frame": "logspec_frames", "centre": "logspec_centre", "clip": "logspec_clip"}


@dataclass
class SplitArrays:
    """One split in memory.

    Attributes:
        ids: V video ids.
        labels: ``[V]`` int category index (-1 for none).
        frames: ``[V, T, 3, S, S]`` uint8.
        annotated: ``[V, T]`` bool.
        audio: ``[V, T, 1, F, Tt]`` float32 - the chosen window per frame (clip-level windows
            are repeated over T, so every frame has its own entry).
        category_names: names behind ``labels``.
    """

    ids: list[str]
    labels: np.ndarray
    frames: np.ndarray
    annotated: np.ndarray
    audio: np.ndarray
    category_names: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_categories(self) -> bool:
        """Every clip has a category (the weak label; S4, not MS3) and there is more than one."""
        return len(self.category_names) > 1 and bool((self.labels >= 0).all())


def load_split(split: str, audio_window: str | None, prepared_dir: Path, spectrograms_dir: Path | None = None) -> SplitArrays:
    """Load a whole split (frames, labels and, if ``audio_window`` is given, audio features from
    ``spectrograms_dir``) from ``prepared_dir`` (``paths.prepared``)."""
    with open_h5(prepared_dir / f"{split}.h5") as f:
        ids = read_strings(f["ids"])
        frames, annotated, labels = f["frames"][()], f["annotated"][()], f["labels"][()]
        names = [str(n) for n in f.attrs["category_names"]]
    audio = np.zeros((len(ids), frames.shape[1], 0), np.float32)
    if audio_window is not None:
        with open_h5(spectrograms_dir / f"{split}.h5") as f:
            if read_strings(f["ids"]) != ids:
                raise StoreError(f"{spectrograms_dir / split}.h5 does not match {prepared_dir / split}.h5; "
                                 "re-run `dvc repro spectrograms`")
            audio = f[AUDIO_WINDOWS[audio_window]][()]
        if audio_window != "frame":
            audio = np.repeat(audio[:, None], frames.shape[1], axis=1)
    return SplitArrays(ids, labels, frames, annotated, audio, names)


def load_masks(split: str, prepared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth ``[V, T, H0, W0]`` uint8 and ``[V, T]`` annotated flags.

    Only evaluation code calls this: training code never reads masks (see ``avs_core.supervision``).
    """
    with open_h5(prepared_dir / f"{split}.h5") as f:
        return f["masks"][()], f["annotated"][()]
