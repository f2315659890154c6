"""Small loss functions, one family per module (``contrastive``, ``c2am``, ``affinity``). Import the
submodules directly, so a stage depends only on the losses it uses."""
