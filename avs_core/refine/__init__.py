"""Pseudo-mask refinement operators (pure tensor functions) and their public API."""
from avs_core.refine.pamr import pamr
from avs_core.refine.random_walk import random_walk, random_walk_dense

__all__ = ["pamr", "random_walk", "random_walk_dense"]
