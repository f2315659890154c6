"""Stage logic of the pseudo-mask pipeline: c2am -> saliency -> pamr -> affinity -> crf.

Training in these stages reads frames (and the maps of earlier stages) of the train split only,
never ground truth; quality is measured afterwards by ``avs_core.quality``.
"""
