"""Stage logic for ``spectrograms``: audio features for every video of a prepared split.

File ``{split}.h5`` (V videos, in the order of the prepared split):

==================  ==========================  ==============================================
dataset             shape / dtype               meaning
==================  ==========================  ==============================================
``ids``             [V] str                     video ids (same order as ``prepare``)
``logspec_clip``    [V, 1, 257, T] float32      EZ-VSL log spectrogram of the whole clip
``logspec_centre``  [V, 1, 257, Tc] float32     ... of the centred ``audio.center_seconds``
``logspec_frames``  [V, 5, 1, 257, Tf] float32  ... of ``audio.frame_seconds`` around each frame
==================  ==========================  ==============================================
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from avs_core.audio import clip_features
from avs_core.config import AudioParams
from avs_core.runtime import progress
from avs_core.store import create_h5, open_h5, read_strings, write_strings


def extract_split(prepared: Path, out: Path, params: AudioParams) -> int:
    """Compute the features of one prepared split in batches; returns the number of videos."""
    with open_h5(prepared) as src:
        ids = read_strings(src["ids"])
        rate = int(src.attrs["sample_rate"])
        audio = src["audio"]
        with create_h5(out, stage="spectrograms", params=asdict(params), split=src.attrs["split"],
                       sample_rate=rate) as fh:
            write_strings(fh, "ids", ids)
            datasets = {}
            starts = range(0, len(ids), params.batch_size)
            for start in progress(starts, desc=f"spectrograms {out.stem}", total=len(starts)):
                wave = torch.from_numpy(audio[start:start + params.batch_size])  # [B, L]
                feats = clip_features(wave, rate, params.center_seconds, params.frame_seconds)
                for name, value in feats.items():
                    if name not in datasets:
                        shape = tuple(value.shape[1:])
                        datasets[name] = fh.create_dataset(name, shape=(len(ids), *shape), dtype="f4",
                                                           chunks=(1, *shape))
                    datasets[name][start:start + len(wave)] = value.numpy()
    return len(ids)
