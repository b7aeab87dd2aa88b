"""Training: losses fall, resume is bit-exact, NaN stops the run, sharding changes nothing."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from sost_jax import losses
from sost_jax.config import load_config, prepare_settings
from sost_jax.mock.survey import make_mock_survey
from sost_jax.store import StoreWriter
from sost_jax.training import (
    TrainingDiverged,
    create_train_state,
    make_train_step,
    train_and_evaluate,
    training_rows,
)


@pytest.fixture(autouse=True)
def _standard_promotion():
    """optax's Adam mixes Python floats with its int32 step count, which strict promotion
    (set for the whole suite in conftest.py) refuses; our own code passes it."""
    with jax.numpy_dtype_promotion("standard"):
        yield


TINY_GRID = ["mock.grid.teff_step=1500.0", "mock.grid.logg_step=2.5", "mock.grid.feh_step=1.5"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config pointed at a tiny mock survey."""
    root = tmp_path_factory.mktemp("tinymock")
    config = load_config("configs/tiny.py", TINY_GRID)
    make_mock_survey(root, config.mock, prepare_settings(config), 48, 48, 4, progress=False)
    config.train.synthetic_store = str(root / "synthetic")
    config.train.observed_store = str(root / "observed")
    return config


def _batch(config, seed=0):
    from sost_jax.store import PreparedStore

    a = PreparedStore(config.train.synthetic_store).read(np.arange(seed, seed + 4))
    b = PreparedStore(config.train.observed_store).read(np.arange(seed, seed + 4))
    return {"x_a": a["flux"], "w_a": a["weight"], "x_b": b["flux"], "w_b": b["weight"]}


def test_a_few_steps_reduce_the_reconstruction_loss(tiny):
    config = load_config(None, [])
    config.update(tiny)
    config.train.steps = 100
    config.train.decay_start = 100
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    step = make_train_step(config)
    batch = _batch(config)
    history = []
    for _ in range(25):
        state, metrics = step(state, batch)
        history.append(float(metrics["recon_x_a"] + metrics["recon_x_b"]))
    assert np.isfinite(history).all()
    assert np.mean(history[-3:]) < 0.7 * np.mean(history[:3])


def test_sharded_step_equals_single_device_step(tiny):
    """Two steps on one device and on a 4-device mesh give the same losses. (Parameters are
    not compared: Adam's first update is lr * sign(gradient), which float reassociation can
    flip for gradients near zero.)"""
    assert len(jax.devices()) == 4
    from jax.sharding import Mesh

    batches = [_batch(tiny, 0), _batch(tiny, 4)]
    runs = []
    for devices in (jax.devices()[:1], jax.devices()):
        state = create_train_state(tiny, jax.random.PRNGKey(1), 400)
        step = make_train_step(tiny, Mesh(np.array(devices), ("data",)))
        history = []
        for batch in batches:
            state, metrics = step(state, batch)
            history.append(metrics)
        runs.append(history)
    for one, four in zip(*runs, strict=True):
        for key in one:
            np.testing.assert_allclose(one[key], four[key], rtol=1e-3, atol=1e-6, err_msg=key)


def _final_state(workdir, step):
    with ocp.CheckpointManager((workdir / "checkpoints").absolute()) as manager:
        return manager.restore(step)["state"]


def test_resume_continues_bit_for_bit(tiny, tmp_path):
    full = train_and_evaluate(tiny, tmp_path / "full", progress=False)
    assert full["step"] == 6
    half = load_config(None, [])
    half.update(tiny)
    half.train.steps = 3  # stop at the first checkpoint ...
    train_and_evaluate(half, tmp_path / "split", progress=False)
    resumed = train_and_evaluate(tiny, tmp_path / "split", progress=False)  # ... go on
    assert resumed["step"] == 6
    a, b = _final_state(tmp_path / "full", 6), _final_state(tmp_path / "split", 6)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    lines = [
        json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().split("\n") if x
    ]
    again = [
        json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().split("\n") if x
    ]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]  # noqa: E731
    assert strip(lines) == strip(again)
    assert {"val_recon_a", "val_recon_b", "val_cycle_a", "val_cycle_b"} <= set(lines[-1])


def test_min_snr_keeps_only_bright_observed_spectra(tiny, tmp_path):
    from sost_jax.store import PreparedStore

    observed = PreparedStore(tiny.train.observed_store)
    snr = np.asarray(observed.meta["snr"])
    cut = float(np.median(snr))
    rows = training_rows(observed, cut, "observed")
    np.testing.assert_array_equal(rows, np.flatnonzero(snr >= cut))
    np.testing.assert_array_equal(training_rows(observed, 0.0, "observed"), np.arange(48))
    with pytest.raises(ValueError, match="too few"):
        training_rows(observed, float(snr.max()) + 1.0, "observed")
    synthetic = PreparedStore(tiny.train.synthetic_store)
    with pytest.raises(ValueError, match="records no S/N"):
        training_rows(synthetic, 10.0, "synthetic")
    config = load_config(None, [])
    config.update(tiny)
    config.train.min_snr = cut
    config.train.steps = 2
    assert train_and_evaluate(config, tmp_path / "run", progress=False)["step"] == 2


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    from sost_jax.store import PreparedStore

    good = PreparedStore(tiny.train.observed_store)
    data = good.read(np.arange(len(good)))
    data["flux"][:] = np.nan  # a corrupt observed store
    writer = StoreWriter(tmp_path / "bad", good.wave, {"source": "test"}, n_shards=1)
    writer.write_shard(0, data["flux"], data["weight"], data["labels"], {"id": good.meta["id"]})
    config = load_config(None, [])
    config.update(tiny)
    config.train.observed_store = str(tmp_path / "bad")
    with pytest.raises(TrainingDiverged, match="non-finite loss .* step 1"):
        train_and_evaluate(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        p.name.isdigit() for p in (tmp_path / "run" / "checkpoints").iterdir()
    )


def test_relative_residual_matches_numpy():
    rng = np.random.default_rng(0)
    wave = np.linspace(3900, 6000, 50)
    x = rng.uniform(0.5, 1.0, (3, 50)).astype(np.float32)
    pred = x * (1 + rng.normal(0, 0.01, x.shape)).astype(np.float32)
    w = np.ones_like(x)
    w[1, 10:20] = 0
    got = losses.relative_residual(
        jnp.asarray(pred), jnp.asarray(x), jnp.asarray(w), jnp.asarray(wave)
    )
    sel = (wave >= 4000) & (wave <= 5500)
    for i in range(3):
        m = sel & (w[i] > 0)
        assert got[i] == pytest.approx(np.mean(np.abs(pred[i, m] - x[i, m]) / x[i, m]), rel=1e-5)


def test_cli_train_runs_and_reports_bad_input(tiny, tmp_path, capsys):
    from sost_jax.cli import main

    args = [
        "train",
        "--config",
        "configs/tiny.py",
        "--quiet",
        *sum((["--set", o] for o in TINY_GRID), []),
    ]
    stores = ["--synthetic", tiny.train.synthetic_store, "--observed", tiny.train.observed_store]
    assert main([*args, "--workdir", str(tmp_path / "run"), *stores]) == 0
    assert "val_recon_b" in capsys.readouterr().out
    assert (tmp_path / "run" / "config.json").exists()
    assert main([*args, "--workdir", str(tmp_path / "x"), "--synthetic", str(tmp_path)]) == 2
    assert "not a prepared store" in capsys.readouterr().err
    assert (
        main([*args, "--workdir", str(tmp_path / "y"), *stores, "--set", "model.pad_mode='x'"]) == 2
    )
    assert "pad_mode" in capsys.readouterr().err
