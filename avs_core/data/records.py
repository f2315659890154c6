"""The common video index that every AVSBench layout reader produces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A dataset item is missing or malformed. The message names the video, the path and a fix."""

    def __init__(self, video_id: str, path: str | Path, problem: str, hint: str = ""):
        self.video_id, self.path, self.problem, self.hint = video_id, str(path), problem, hint
        msg = f"video '{video_id}': {problem}: {path}"
        super().__init__(msg + (f" ({hint})" if hint else ""))

    def as_dict(self) -> dict[str, str]:
        return {"video_id": self.video_id, "path": self.path, "problem": self.problem, "hint": self.hint}


@dataclass(frozen=True)
class VideoRecord:
    """One video of any AVSBench layout.

    Attributes:
        video_id: the layout's own id (S4 ``name``, MS3 ``video_id``, AVSS ``uid``).
        split: ``train`` | ``val`` | ``test``.
        category: S4 category; ``""`` for MS3; for AVSS the ``label`` subset (v1s / v1m / v2).
        labels: names of the sounding categories where the layout gives them.
        frame_paths: one path per frame, in temporal order.
        mask_paths: one entry per frame; ``None`` where the frame has no annotation.
        audio_path: the WAV file (never the release's pickled features).
    """

    video_id: str
    split: str
    category: str
    labels: tuple[str, ...]
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path | None, ...]
    audio_path: Path

    @property
    def annotated(self) -> tuple[bool, ...]:
        return tuple(p is not None for p in self.mask_paths)


@dataclass
class DatasetIndex:
    """Records that passed the index-level checks, and the problems found on the others."""

    records: list[VideoRecord]
    problems: list[DataError]

    def split(self, name: str) -> list[VideoRecord]:
        return [r for r in self.records if r.split == name]
