"""Training: losses fall, resume is bit-exact, NaN stops the run, sharding changes nothing."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import TINY_GRID
from conftest import tiny_batch as _batch

from sost_jax.config import load_config
from sost_jax.data.store import StoreWriter
from sost_jax.sost import losses
from sost_jax.sost.input_pipeline import training_rows
from sost_jax.sost.training import (
    TrainingDiverged,
    create_train_state,
    make_train_step,
    train_and_evaluate,
)
from sost_jax.sost.translation import translate


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
    from sost_jax.data.store import PreparedStore

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
    from sost_jax.data.store import PreparedStore

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
    x[2, 5] = 1e-4  # too close to 0 to divide by
    rel = np.asarray(losses.pixel_relative_residual(pred, x, w))
    assert np.isnan(rel[1, 10:20]).all() and np.isnan(rel[2, 5])
    np.testing.assert_allclose(rel[0], (pred[0] - x[0]) / x[0], rtol=1e-6)


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


def _paired_copy(tiny, tmp_path, unpaired=(0, 1)):
    """A partner store for the tiny observed store: the synthetic spectra row by row (any
    row-aligned spectra do for the mechanics), rows ``unpaired`` without a partner."""
    from sost_jax.data.store import PreparedStore

    syn = PreparedStore(tiny.train.synthetic_store)
    obs = PreparedStore(tiny.train.observed_store)
    data = syn.read(np.arange(len(obs)))
    weight = np.ones_like(data["flux"])
    weight[list(unpaired)] = 0.0
    writer = StoreWriter(tmp_path / "pairs", obs.wave, {"source": "test"}, n_shards=1)
    writer.write_shard(0, data["flux"], weight, obs.labels, {"id": obs.meta["id"]})
    return str(tmp_path / "pairs")


def test_change_translation_starts_as_the_identity(tiny):
    config = load_config(None, [])
    config.update(tiny)
    config.model.translation = "change"
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    x = jnp.asarray(_batch(config)["x_a"])
    s = jax.random.normal(jax.random.PRNGKey(1), (4, config.model.style_dim))
    got = translate(state.gen_params, x, "synthetic", s, config.model)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(translate(state.gen_params, x, "a", s, config.model), got)
    with pytest.raises(ValueError, match="synthetic' or 'observed"):
        translate(state.gen_params, x, "model", s, config.model)
    assert "change_decoder" in state.gen_params["b"]


def test_paired_term_uses_only_rows_with_a_partner(tiny, tmp_path):
    from sost_jax.data.store import PreparedStore
    from sost_jax.sost.objectives import generator_loss

    config = load_config(None, [])
    config.update(tiny)
    config.loss.paired = 10.0
    pairs = PreparedStore(_paired_copy(tiny, tmp_path)).read(np.arange(4))
    batch = _batch(config)
    batch.update(x_p=batch["x_b"], w_p=batch["w_b"], p=pairs["flux"], pw=pairs["weight"])
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    key = jax.random.PRNGKey(2)
    _, (terms, _) = generator_loss(state.gen_params, state.dis_params, batch, key, config)
    assert float(terms["paired"]) > 0
    changed = {**batch, "x_b": batch["x_b"].copy()}
    changed["x_b"][0] += 0.5  # row 0 has no partner: only the unpaired terms see it
    changed["x_p"] = changed["x_b"]
    _, (again, _) = generator_loss(state.gen_params, state.dis_params, changed, key, config)
    # The observed style of row 0 changes nothing in the other rows' translations.
    assert float(again["paired"]) == pytest.approx(float(terms["paired"]), rel=1e-6)
    assert float(again["recon_x_b"]) != pytest.approx(float(terms["recon_x_b"]), rel=1e-3)


def test_paired_training_runs_and_needs_its_store(tiny, tmp_path):
    config = load_config(None, [])
    config.update(tiny)
    config.loss.paired = 10.0
    config.model.translation = "change"
    config.train.steps = 3
    with pytest.raises(ValueError, match="train.paired_store"):
        train_and_evaluate(config, tmp_path / "nopairs", progress=False)
    config.train.paired_store = _paired_copy(tiny, tmp_path)
    out = train_and_evaluate(config, tmp_path / "run", progress=False)
    assert out["step"] == 3
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-2])
    assert np.isfinite(last["paired"])
    state = _final_state(tmp_path / "run", 3)
    last_conv = [v for k, v in state["gen_params"]["b"]["change_decoder"].items() if "Conv1D" in k]
    assert np.abs(last_conv[-1]["kernel"]).max() > 0  # trained away from its zero start


def test_without_unpaired_terms_only_reconstruction_and_pairs_train(tiny, tmp_path):
    from sost_jax.data.store import PreparedStore

    config = load_config(None, [])
    config.update(tiny)
    config.model.translation = "change"
    config.loss.paired = 10.0
    config.loss.gan = config.loss.recon_s = config.loss.recon_c = 0.0
    pairs = PreparedStore(_paired_copy(tiny, tmp_path)).read(np.arange(4))
    batch = _batch(config)
    batch.update(x_p=batch["x_b"], w_p=batch["w_b"], p=pairs["flux"], pw=pairs["weight"])
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    dis_before = jax.tree.map(np.asarray, state.dis_params)
    new, metrics = make_train_step(config)(state, batch)
    assert set(metrics) == {"gen_total", "dis_total", "recon_x_a", "recon_x_b", "paired"}
    assert float(metrics["dis_total"]) == 0.0
    jax.tree.map(
        np.testing.assert_array_equal, dis_before, jax.tree.map(np.asarray, new.dis_params)
    )


def test_domain_mean_averages_only_pixels_with_data(tiny):
    from sost_jax.data.store import PreparedStore
    from sost_jax.sost.input_pipeline import domain_mean

    store = PreparedStore(tiny.train.observed_store)
    rows = np.arange(0, 40, 3)
    data = store.read(rows)
    good = data["weight"] > 0
    want = np.where(good, data["flux"], 0).sum(0) / np.maximum(good.sum(0), 1)
    got = domain_mean(store, rows)
    np.testing.assert_allclose(got[good.any(0)], want[good.any(0)], rtol=1e-6)
    assert np.isnan(got[~good.any(0)]).all()


def test_mean_gap_term_trains_the_mean_change_towards_the_gap(tiny):
    from sost_jax.sost.objectives import generator_loss

    config = load_config(None, [])
    config.update(tiny)
    config.model.translation = "change"
    config.loss.gan = config.loss.recon_s = config.loss.recon_c = 0.0
    config.loss.mean_gap = 10.0
    config.train.lr = 1e-2
    # a smooth gap the change decoder can draw (the tiny mock's own is mostly noise)
    gap = 0.05 * np.sin(np.linspace(0, 6 * np.pi, 400)).astype(np.float32)
    gap[:10] = np.nan  # unknown pixels are left out
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    batch = _batch(config)
    key = jax.random.PRNGKey(5)
    _, (terms, _) = generator_loss(
        state.gen_params, state.dis_params, batch, key, config, {"mean_gap": jnp.asarray(gap)}
    )
    known = np.isfinite(gap)
    # the change starts at zero: the term is the mean |gap|
    assert float(terms["mean_gap"]) == pytest.approx(np.abs(gap[known]).mean(), rel=1e-5)
    with pytest.raises(ValueError, match="mean difference"):
        generator_loss(state.gen_params, state.dis_params, batch, key, config)
    step = make_train_step(config, constants={"mean_gap": gap})
    history = []
    for _ in range(30):
        state, metrics = step(state, batch)
        history.append(float(metrics["mean_gap"]))
    assert np.mean(history[-3:]) < 0.8 * history[0]


def test_as_measured_adds_the_noise_and_mask_of_observed_spectra():
    from sost_jax.sost.objectives import as_measured

    x = jnp.full((3, 20_000), 0.8)
    weight = np.tile(np.array([[100.0], [400.0], [2500.0]]), (1, 20_000)).astype(np.float32)
    weight[:, :1000] = 0.0  # no data: flux 1, as in the stores
    out = np.asarray(as_measured(x, jnp.asarray(weight), jax.random.PRNGKey(0)))
    assert (out[:, :1000] == 1.0).all()
    sigmas = sorted(float(np.std(row[1000:] - 0.8)) for row in out)
    np.testing.assert_allclose(sigmas, [0.02, 0.05, 0.1], rtol=0.03)
    assert abs(float(np.mean(out[:, 1000:])) - 0.8) < 2e-3


def test_paired_batches_come_only_from_stars_with_a_partner(tiny, tmp_path, monkeypatch):
    """A small paired subset (an APOGEE-like overlap) still fills every paired batch."""
    from sost_jax.sost import input_pipeline

    config = load_config(None, [])
    config.update(tiny)
    config.model.translation = "change"
    config.loss.paired = 10.0
    config.train.steps = 2
    paired_rows = [3, 7, 11, 20, 30, 41]
    config.train.paired_store = _paired_copy(
        tiny, tmp_path, unpaired=[i for i in range(48) if i not in paired_rows]
    )
    seen = []
    real_stream = input_pipeline.BatchStream

    def spy(store, indices, *args, **kwargs):
        if kwargs.get("partner") is not None:
            seen.append(np.asarray(indices))
        return real_stream(store, indices, *args, **kwargs)

    monkeypatch.setattr(input_pipeline, "BatchStream", spy)
    assert train_and_evaluate(config, tmp_path / "run", progress=False)["step"] == 2
    assert len(seen) == 1 and set(seen[0]) <= set(paired_rows) and len(seen[0]) >= 4
    config.train.paired_store = _paired_copy(
        tiny, tmp_path / "few", unpaired=[i for i in range(48) if i not in (3,)]
    )
    with pytest.raises(ValueError, match="too few"):
        train_and_evaluate(config, tmp_path / "run2", progress=False)
