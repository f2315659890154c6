"""Weakly-supervised audio-visual segmentation on AVSBench: library code behind the DVC stages."""

__version__ = "0.1.0"
