"""Pseudo-mask refinement operators (pure tensor / array functions): ``pamr``, ``random_walk``,
``trimap``, ``crf``. Import the submodules directly, so a stage depends only on the operators it uses."""
