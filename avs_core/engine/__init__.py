"""Training-loop helpers: distributed setup, checkpoints, data order. Import submodules directly."""
