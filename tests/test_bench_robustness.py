"""The robustness bench's draws: which params a draw changes, and the spread table over draws."""
import yaml

from bench import robustness
from bench.pipeline import REPO


def _seed_paths(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _seed_paths(v, (*path, k))
    elif path and path[-1] == "seed":
        yield path


def test_a_draw_moves_every_seed_in_params_yaml():
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(robustness.SEED_KEYS) == set(_seed_paths(defaults)), "a seed param the draws do not move"
    assert robustness.seed_override(0) == {}
    moved = robustness.seed_override(3)
    for keys in robustness.SEED_KEYS:
        value, default = moved, defaults
        for k in keys:
            value, default = value[k], default[k]
        assert value == default + 3


def _row(run, head, monotone):
    return {"run": run, "style_subset": run, "retrieval": 0.5, "coarse": 0.2, "shuffled": 0.1, "full": 0.8,
            "head": head, "head_over_full": head / 0.8, "head_over_crf": 1.0, "beats_baselines": head > 0.5,
            "chain_monotone": monotone}


def test_spread_table_summarises_each_run_over_its_draws():
    rows = [_row("shapes/s4", 0.6, True), _row("shapes/s4", 0.4, False), _row("flat/s4", 0.7, True)]
    lines = robustness.spread_table(rows)
    shapes = next(line for line in lines if line.startswith("| shapes/s4 "))
    assert "| 2 |" in shapes and "0.500 [0.400, 0.600]" in shapes and "2.000 [2.000, 2.000]" in shapes
    assert shapes.endswith("| 1 of 2 | 1 of 2 |")
    assert next(line for line in lines if line.startswith("| flat/s4 ")).endswith("| 1 of 1 | 1 of 1 |")
