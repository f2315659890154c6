"""Every recipe in docs/RECIPES.md is a valid experiment: its params validate (here), and
`dvc exp run --dry` accepts it (``tests/test_dvc_pipeline.py``, on a project that has run)."""
import re
import shlex

import pytest
import yaml

from avs_core.config import params_from_dict
from tests.helpers import REPO

RECIPES = REPO / "docs" / "RECIPES.md"


def recipes() -> dict[str, list[str]]:
    """``{name: argv}`` of each ``dvc exp run -n NAME ...`` block."""
    out = {}
    for block in re.findall(r"```bash\n(.*?)```", RECIPES.read_text(), re.S):
        argv = shlex.split(block.replace("\\\n", " "))
        if argv[:3] == ["dvc", "exp", "run"]:
            out[argv[argv.index("-n") + 1]] = argv
    return out


def set_params(argv: list[str]) -> dict:
    """params.yaml with each ``-S key=value`` applied, the value read as YAML (as DVC does)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for flag, arg in zip(argv, argv[1:]):
        if flag != "-S":
            continue
        key, value = arg.split("=", 1)
        node = params
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        assert last in node, f"{key} is not a param"
        node[last] = yaml.safe_load(value)
    return params


def test_the_three_methods_have_recipes():
    assert set(recipes()) == {"wsavs", "uspl", "avsbench-full"}


@pytest.mark.parametrize("name", sorted(recipes()))
def test_recipe_params_validate(name):
    p = params_from_dict(set_params(recipes()[name]))
    assert p.data.source == "avsbench" and p.data.image_size == 224
