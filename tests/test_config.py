import dataclasses

import pytest
import yaml

from avs_core.config import Params, ParamError, load_params, params_from_dict


def test_repo_params_file_is_valid():
    p = load_params("params.yaml")
    assert p.data.subset in ("s4", "ms3")


def test_params_file_states_every_default_and_only_the_defaults():
    """One source of defaults: ``params.yaml`` spells out every key with the dataclass default, so a
    section omitted from a user's file and the shipped file cannot disagree."""
    data = yaml.safe_load(open("params.yaml"))

    def as_data(value):
        if dataclasses.is_dataclass(value):
            return {f.name: as_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return list(value) if isinstance(value, tuple) else value

    assert data == as_data(Params())


@pytest.mark.parametrize("data,key", [
    ({"data": {"imgsize": 3}}, "data.imgsize"),
    ({"nope": {}}, "nope"),
    ({"data": {"synthetic": {"videos": 3}}}, "data.synthetic.videos"),
    ({"data": {"image_size": "big"}}, "data.image_size"),
    ({"data": {"image_size": 100}}, "data.image_size"),
    ({"data": {"subset": "avss2"}}, "data.subset"),
    ({"data": {"on_error": "ignore"}}, "data.on_error"),
    ({"data": {"root": "/elsewhere"}}, "data.root"),
    ({"audio": {"center_seconds": 0}}, "audio.center_seconds"),
    ({"audio": {"batch_size": True}}, "audio.batch_size"),
    ({"base": {"seed": -1}}, "base.seed"),
    ({"alignment": {"scales": [3, 4], "map_scales": [1, 2]}}, "alignment.map_scales"),
    ({"alignment": {"map_scales": []}}, "alignment.map_scales"),
    ({"alignment": {"audio_freq_pool": 0}}, "alignment.audio_freq_pool"),
    ({"alignment": {"ema": 1.0}}, "alignment.ema"),
    ({"alignment": {"scales": [0, 1]}}, "alignment.scales"),
    ({"c2am": {"feature_stages": [0, 1]}}, "c2am.feature_stages"),
    ({"c2am": {"feature_stages": [2, 2]}}, "c2am.feature_stages"),
    ({"c2am": {"feature_stages": []}}, "c2am.feature_stages"),
    ({"saliency": {"cue_threshold": 1.0}}, "saliency.cue_threshold"),
    ({"seg": {"crop_scale": 0}}, "seg.crop_scale"),
    ({"seg": {"crop_scale": 1.5}}, "seg.crop_scale"),
    ({"seg": {"model": "avsbench", "map_input": "coarse"}}, "seg.map_input"),
    ({"seg": {"map_input": "walk"}}, "seg.map_input"),
    ({"seg": {"full_map_input": "pamr"}}, "seg.full_map_input"),
    ({"affinity": {"rescale": "sum"}}, "affinity.rescale"),
    ({"affinity": {"max_growth": 0.5}}, "affinity.max_growth"),
    ({"affinity": {"rescale": "none"}}, "affinity.max_growth"),  # the default bound would be ignored silently
    ({"seg": {"coarse_input": True}}, "seg.coarse_input"),
])
def test_bad_params_name_the_key(data, key):
    with pytest.raises(ParamError) as exc:
        params_from_dict(data)
    assert exc.value.key == key
    assert f"'{key}'" in str(exc.value)


def test_a_renamed_key_names_its_replacement():
    with pytest.raises(ParamError, match="renamed to seg.map_input"):
        params_from_dict({"seg": {"coarse_input": False}})


def test_strings_written_by_dvc_set_are_cast(tmp_path):
    # `dvc exp run -S audio.center_seconds=2e+00` writes a YAML-1.1 string
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"audio": {"center_seconds": "2e+00", "batch_size": "8"}}))
    p = load_params(f)
    assert p.audio.center_seconds == 2.0 and p.audio.batch_size == 8


def test_avsbench_source_accepts_any_root():
    p = params_from_dict({"data": {"source": "avsbench", "root": "/data/avsbench_data"}})
    assert p.data.root == "/data/avsbench_data"


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ParamError, match="does not exist"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        load_params(bad)
