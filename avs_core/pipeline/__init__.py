"""Stage logic, one module per DVC stage (``stages/<stage>.py`` is its thin entry point):
synthesize -> prepare -> spectrograms -> align -> c2am -> saliency -> pamr -> affinity -> crf ->
train_seg -> evaluate. Import the modules directly, so a stage depends only on the code it uses.

Training in the pseudo-mask stages (c2am ... crf) reads frames (and the maps of earlier stages)
of the train split only, never ground truth; quality is measured afterwards by ``avs_core.quality``.
"""
