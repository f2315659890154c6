"""Learning itself, not plumbing: on a tiny synthetic dataset (fixed seeds, CPU) the whole DAG must

* give coarse maps that find the sounding object with the clip's own audio clearly better than
  with another category's audio (the shuffled-audio control), and
* train a segmentation network on the pseudo masks that learns them: well above the all-foreground
  chance level and at a fair fraction of its labels' (the CRF masks') own test mIoU.

Tolerances, measured on the development machine (2-core Xeon), test split of 30 videos (12 gave a
ratio anywhere between 1.1x and 1.7x over seeds, too noisy to guard anything). The floats, hence
what a tiny run learns, change with torch's thread count, so ``learned_run`` always trains on one
thread, the path CI's xdist workers take. Session 16 (``LEARNING`` with audio_freq_pool 4):
coarse map own / shuffled audio 0.157 / 0.057 (2.73x) on 1 thread, 0.134 / 0.052 (2.60x) on 2,
0.115 / 0.044 (2.60x) with alignment.seed 1 on 1; the pseudo-mask network 0.348, 0.253 and 0.307
mIoU against all-foreground 0.064 (5.5x, 4.0x, 4.8x) and 0.90, 0.79 and 1.18 of its CRF labels'
(0.386, 0.321, 0.259). (Session 14, audio_freq_pool 2: 2.12x / 1.93x, 3.5x / 3.2x, 0.73 / 0.83.)
Session 32 (AVX512 EPYC, this code): on 1 thread 0.109 / 0.062 (1.76x), the network 0.351 (5.5x
chance, 0.88 of its CRF labels' 0.399). On 2 threads seed 0 is a weak draw: 0.074 / 0.056 (1.32x),
CRF labels 0.180, the network 0.044, and the run said so itself (``align``'s own-vs-shuffled check
and ``train_seg``'s checks failed in reports/); alignment.seed 1 on 2 threads: 0.086 / 0.035
(2.46x), the network 0.218 (3.4x). Asserted: 1.25x, 1.8x and 0.45. A broken loss, a shuffled
pairing or a net that ignores its targets fall to about 1x / chance.

Not asserted here, and not trained in this run (``seg.baselines: []``): that this network beats
AVS(ws). At this size it did not reliably (session 9,
seg.width 8: 0.159, 0.098 and 0.211 against 0.213, 0.225 and 0.209 over align seeds 0-2; session 14,
width 16: 0.223 / 0.189 on 1 thread, 0.201 / 0.202 on 2): with 36 clips the pseudo masks are
weak and AVS(ws) learns from the category labels directly. At the default size it does
(``python -m bench --only robustness``, docs/BENCHMARKS.md).

The tiny run (``learned_run`` in conftest.py, shared with the explorer tests) uses tau = 0.07 and
lr 1e-3 so that 8 epochs on 36 clips suffice (the default tau = 0.03 needs the default dataset's
longer run). It takes 74 s on one thread of this AVX512 machine (3.7 min on session 16's Xeon).
"""
import json

import pytest

from avs_core.learning import Check, loss_check, mask_chance_miou, report, score_check
from avs_core.runtime import NotLearnedError


@pytest.fixture(scope="module")
def learned(learned_run):
    return json.loads((learned_run / "reports/metrics.json").read_text())


def test_own_audio_beats_shuffled_audio(learned):
    own, shuffled = learned["methods"]["coarse_av"]["miou"], learned["methods"]["shuffled_audio"]["miou"]
    assert own >= 1.25 * shuffled, (own, shuffled)


def test_network_learns_its_pseudo_masks(learned, learned_run):
    from avs_core.data.splits import load_masks

    masks, annotated = load_masks("test", learned_run / "data/prepared")
    chance = mask_chance_miou(masks[annotated])
    pseudo, crf = learned["methods"]["seg_pseudo"]["miou"], learned["methods"]["crf"]["miou"]
    assert pseudo >= 1.8 * chance, (pseudo, chance)
    assert pseudo >= 0.45 * crf, (pseudo, crf)
    # the stage checks the same on val and says so in its report (here it must pass)
    doc = json.loads((learned_run / "reports/train_seg/learning.json").read_text())
    labels = [c for c in doc["checks"] if c["name"].startswith("pseudo: val mIoU vs its labels")]
    assert len(labels) == 1 and labels[0]["passed"], labels


def test_checks_compare_with_chance():
    assert loss_check("l", 9.0, 10.0).passed and not loss_check("l", 9.9, 10.0).passed
    assert score_check("s", 0.3, 0.1).passed and not score_check("s", 0.12, 0.1).passed
    assert not Check("nan", float("nan"), 0.1, 0.1).passed
    assert mask_chance_miou(__import__("numpy").ones((2, 4, 4))) == 1.0


def test_report_warns_or_stops(tmp_path, caplog):
    bad = [score_check("val mIoU", 0.1, 0.1)]
    doc = report("demo", bad, "warn", tmp_path / "learning.json")
    assert doc["learned"] is False and "NOTHING LEARNED" in caplog.text
    assert json.loads((tmp_path / "learning.json").read_text())["checks"][0]["passed"] is False
    with pytest.raises(NotLearnedError, match="demo learned nothing"):
        report("demo", bad, "error", tmp_path / "learning.json")
