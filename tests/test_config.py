"""Configs: defaults, files, overrides, validation, and the resolved-config round trip."""

from pathlib import Path

import pytest

from sost_jax.config import load_config, save_config, validate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_every_shipped_config_loads_and_validates():
    files = sorted(CONFIGS.glob("*.py"))
    assert files, "configs/ is empty"
    for path in files:
        config = load_config(path)
        assert validate(config).preprocess.wave.size > 0


def test_overrides_apply_with_types_and_unknown_keys_fail():
    config = load_config(None, ["preprocess.grid_step=2", "mock.noise.snr_min=20.0"])
    assert config.preprocess.grid_step == 2.0
    assert validate(config).preprocess.wave.size == 2400
    with pytest.raises(ValueError, match="unknown config key"):
        load_config(None, ["preprocess.grid_stp=2"])
    with pytest.raises(ValueError, match="expects float"):
        load_config(None, ["preprocess.grid_step=abc"])
    with pytest.raises(ValueError, match="key.path=value"):
        load_config(None, ["preprocess.grid_step"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("preprocess.grid_stop=3000.0", "bad wavelength grid"),
        ("preprocess.grid_medium='water'", "grid_medium"),
        ("preprocess.normalise.knot_spacing=-1.0", "knot_spacing"),
        ("preprocess.min_coverage=1.5", "min_coverage"),
        ("data.reader='sdss'", "data.reader"),
        ("demo.n_test=0", "demo.n_test"),
        ("mock.noise.snr_min=-5.0", "snr_min"),
        ("train.min_snr=-1.0", "train.min_snr"),
    ],
)
def test_bad_values_give_clear_errors(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_saved_config_loads_back(tmp_path):
    config = load_config(None, ["preprocess.grid_step=0.5", "demo.n_test=7"])
    save_config(config, tmp_path / "config.json")
    again = load_config(tmp_path / "config.json")
    assert again.to_dict() == config.to_dict()


def test_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.py")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ValueError, match="get_config"):
        load_config(bad)


def test_the_demo_reads_its_defaults_from_the_shipped_config_file():
    from sost_jax.config import CONFIGS, cpu_config, shipped_config

    # configs/ at the top is the package's own folder (one source, installed with it)
    assert CONFIGS.samefile(Path(__file__).resolve().parents[1] / "configs")
    assert cpu_config().to_dict() == load_config("configs/cpu.py").to_dict()
    assert cpu_config().train.steps == 700 and cpu_config().loss.paired == 10.0
    with pytest.raises(ValueError, match="no shipped config 'cpuu'; shipped: cpu, cpu_unpaired"):
        shipped_config("cpuu")


def test_a_run_saved_before_a_setting_existed_loads_with_its_default(tmp_path):
    import json

    saved = load_config("configs/tiny.py").to_dict()
    del saved["model"]["arch"], saved["loss"]["mean_gap"]  # keys added after this run
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = load_config(tmp_path / "config.json")
    assert config.model.arch == "padded" and config.loss.mean_gap == 0.0


MISSPELT = """
from sost_jax.config import default_config, validate


def get_config():
    config = default_config()
    config.train.step = 100  # meant: steps
    return config
"""


def test_a_misspelt_key_in_a_config_file_is_an_error_naming_the_nearest(tmp_path, capsys):
    from sost_jax.cli import main

    path = tmp_path / "typo.py"
    path.write_text(MISSPELT)
    with pytest.raises(
        ValueError,
        match=r"config file .*typo.py, line 7: .*'train\.step'; did you mean 'train\.steps'",
    ):
        load_config(path)
    # The command line: one line naming the key, exit status 2.
    assert (
        main(["prepare", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'train.step'" in err and "'train.steps'" in err
    # Deeper sections too, and a section name itself.
    path.write_text(
        MISSPELT.replace("config.train.step", "config.preprocess.normalise.knot_spcing")
    )
    with pytest.raises(ValueError, match=r"did you mean 'preprocess\.normalise\.knot_spacing'"):
        load_config(path)
    path.write_text(MISSPELT.replace("config.train.step = 100", "config.trian.steps = 100"))
    with pytest.raises(ValueError, match=r"'trian'; did you mean 'train'"):
        load_config(path)


def test_a_config_file_value_of_the_wrong_type_is_an_error(tmp_path):
    path = tmp_path / "typed.py"
    path.write_text(MISSPELT.replace("config.train.step = 100", "config.train.steps = 2.5"))
    with pytest.raises(ValueError, match=r"typed.py, line 7: .*'steps'.*2.5"):
        load_config(path)
    path.write_text(MISSPELT.replace("config.train.step = 100", "config.train.steps = True"))
    with pytest.raises(ValueError, match=r"'train.steps' must be an integer, got True"):
        load_config(path)


def test_a_file_s_own_code_errors_are_not_reported_as_config_keys(tmp_path):
    path = tmp_path / "buggy.py"
    path.write_text(MISSPELT.replace("config.train.step = 100", "None.steps"))
    with pytest.raises(AttributeError, match="NoneType"):
        load_config(path)


def test_a_misspelt_override_names_the_nearest_key(tmp_path, capsys):
    from sost_jax.cli import main

    with pytest.raises(ValueError, match=r"did you mean 'train\.steps'"):
        load_config(None, ["train.step=100"])
    with pytest.raises(ValueError, match=r"'preproces' in override .*did you mean 'preprocess'"):
        load_config(None, ["preproces.grid_step=2.0"])
    argv = ["prepare", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "train.stepz=1"]
    assert main(argv) == 2
    assert "did you mean 'train.steps'" in capsys.readouterr().err


def test_a_config_file_may_add_its_own_sections(tmp_path):
    path = tmp_path / "own.py"
    path.write_text(
        MISSPELT.replace(
            "config.train.step = 100  # meant: steps",
            "with config.unlocked():\n        config.survey = {'name': 'x', 'fields': {'a': 1}}",
        )
    )
    assert load_config(path).survey.fields.a == 1
    # Not by accident: the defaults are locked.
    path.write_text(path.read_text().replace("with config.unlocked():\n        ", ""))
    with pytest.raises(ValueError, match="unknown config key 'survey'"):
        load_config(path)


def test_a_saved_config_reads_back_with_its_own_sections(tmp_path):
    config = load_config("configs/miles_ck04.py", ["train.seed=7"])
    save_config(config, tmp_path / "config.json")
    again = load_config(tmp_path / "config.json")
    assert again.to_dict() == config.to_dict() and again.miles.test_modulus == 5
    with pytest.raises(AttributeError, match='Did you mean "steps"'):
        again.train.step = 1  # still locked
