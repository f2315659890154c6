"""The pseudo-mask explorer: one static HTML page (``avs inspect``) over every frame and every map.

* :mod:`~avs_core.explore.scores`: which maps exist in a run, turned into masks by the rule
  ``evaluate`` uses, and scored per frame (and inverted, to find maps that prefer the background).
* :mod:`~avs_core.explore.revisions`: the outputs of a git revision or DVC experiment, read from
  the DVC cache into a temporary folder (the workspace is never touched).
* :mod:`~avs_core.explore.page`: writes ``index.html`` (data, script and style inline) and the
  image sprites beside it, a few videos at a time (bounded memory).
"""
