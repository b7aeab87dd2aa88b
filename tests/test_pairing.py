"""Synthetic partners: row-aligned with the observed store, the emulator's flux at each
star's labels, zero weight where a star cannot be paired; batches carry the partner rows."""

import dataclasses

import jax
import numpy as np
import pytest

from sost_jax.data.batches import BatchStream, Position
from sost_jax.data.store import PreparedStore, StoreWriter
from sost_jax.library.emulator import Emulator, EmulatorSettings, PayneMLP, Scaler
from sost_jax.sost.pairing import paired_store, partner_rows

WAVE = np.linspace(4000.0, 5000.0, 50)


def _emulator(wave=WAVE) -> Emulator:
    settings = EmulatorSettings(hidden=(8,))
    module = PayneMLP(settings.hidden, wave.size, settings.activation)
    params = module.init(jax.random.PRNGKey(0), np.zeros((1, 3), np.float32))["params"]
    scaler = Scaler(np.array([3500.0, 0.0, -2.5]), np.array([8000.0, 5.0, 0.5]))
    return Emulator(settings, params, scaler, np.ones(wave.size), 0.1 * np.ones(wave.size), wave)


@pytest.fixture()
def observed(tmp_path) -> PreparedStore:
    labels = np.array(
        [
            [5000.0, 4.0, 0.0],
            [np.nan, 4.0, 0.0],  # unknown Teff
            [9000.0, 4.0, 0.0],  # outside the emulator's grid
            [4000.0, 1.0, -1.0],
            [6000.0, 4.5, 0.2],
        ]
    )
    writer = StoreWriter(tmp_path / "obs", WAVE, {}, n_shards=2)
    for s, rows in enumerate((np.arange(3), np.arange(3, 5))):
        flux = np.full((len(rows), WAVE.size), 0.9, np.float32)
        ids = np.array([f"s{i}" for i in rows])
        writer.write_shard(s, flux, np.ones_like(flux), labels[rows], {"id": ids})
    return PreparedStore(tmp_path / "obs")


def test_partner_rows_need_finite_labels_inside_the_grid():
    labels = np.array([[5000.0, 4.0, 0.0], [np.nan, 4.0, 0.0], [5000.0, 6.0, 0.0]])
    ok = partner_rows(labels, np.array([3500.0, 0.0, -2.5]), np.array([8000.0, 5.0, 0.5]))
    assert ok.tolist() == [True, False, False]


def test_partners_are_the_emulator_at_each_stars_labels(observed, tmp_path):
    emulator = _emulator()
    store = paired_store(emulator, observed, tmp_path / "pairs", batch=2, shard_size=2)
    assert len(store) == len(observed) and store.complete
    np.testing.assert_array_equal(store.meta["id"], observed.meta["id"])
    data = store.read(np.arange(len(store)))
    ok = np.array([True, False, False, True, True])
    assert (data["weight"][ok] == 1).all() and (data["weight"][~ok] == 0).all()
    expected = np.asarray(emulator.generate(observed.labels[ok]))
    np.testing.assert_allclose(data["flux"][ok], expected, rtol=1e-6)
    assert (data["flux"][~ok] == 1).all()
    again = paired_store(emulator, observed, tmp_path / "pairs", batch=2, shard_size=2)
    np.testing.assert_array_equal(again.read(np.arange(5))["flux"], data["flux"])


def test_pairing_refuses_another_grid_and_stores_without_labels(observed, tmp_path):
    with pytest.raises(ValueError, match="grid"):
        paired_store(_emulator(np.linspace(4000.0, 6000.0, 50)), observed, tmp_path / "x")
    writer = StoreWriter(tmp_path / "nolabels", WAVE, {}, n_shards=1)
    flux = np.ones((3, WAVE.size), np.float32)
    writer.write_shard(0, flux, flux, np.full((3, 3), np.nan), {"id": np.arange(3)})
    with pytest.raises(ValueError, match="nothing to pair"):
        paired_store(_emulator(), PreparedStore(tmp_path / "nolabels"), tmp_path / "y")


def test_batches_carry_the_partner_of_each_row(observed, tmp_path):
    pairs = paired_store(_emulator(), observed, tmp_path / "pairs")
    stream = BatchStream(observed, np.arange(5), batch_size=3, seed=1, partner=pairs)
    batch, _ = stream.batch_at(Position())
    rows = stream._order(0)[:3]
    np.testing.assert_array_equal(batch["p"], pairs.read(rows)["flux"])
    np.testing.assert_array_equal(batch["pw"], pairs.read(rows)["weight"])
    writer = StoreWriter(tmp_path / "short", WAVE, {}, n_shards=1)
    flux = np.ones((2, WAVE.size), np.float32)
    writer.write_shard(0, flux, flux, np.zeros((2, 3)), {"id": np.arange(2)})
    with pytest.raises(ValueError, match="row-aligned"):
        BatchStream(observed, np.arange(5), 3, 1, partner=PreparedStore(tmp_path / "short"))
    writer = StoreWriter(tmp_path / "others", WAVE, {}, n_shards=1)  # same shape, other stars
    flux = np.ones((5, WAVE.size), np.float32)
    writer.write_shard(
        0, flux, flux, np.zeros((5, 3)), {"id": np.array([f"x{i}" for i in range(5)])}
    )
    with pytest.raises(ValueError, match="ids"):
        BatchStream(observed, np.arange(5), 3, 1, partner=PreparedStore(tmp_path / "others"))


def test_cli_pair_writes_the_partner_store(observed, tmp_path, capsys):
    from sost_jax.cli import main

    _emulator().save(tmp_path / "emu")
    args = ["pair", "--emulator", str(tmp_path / "emu"), "--observed", str(observed.root)]
    assert main([*args, "--out", str(tmp_path / "pairs")]) == 0
    assert "3 of 5 observed spectra" in capsys.readouterr().out
    assert len(PreparedStore(tmp_path / "pairs")) == 5
    assert main([*args[:3], "--observed", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a prepared store" in capsys.readouterr().err


def test_label_errors_have_the_asked_offset_scale_and_noise():
    from sost_jax.sost.pairing import LabelErrors

    rng = np.random.default_rng(0)
    n = 200_000
    truth = np.stack(
        [rng.uniform(3500, 8000, n), rng.uniform(0, 5, n), rng.uniform(-2, 0.5, n)], axis=1
    )
    errors = LabelErrors.from_config(
        [100.0, 0.15, 0.1],
        {"teff_offset": 80.0, "teff_scale": 1.02, "logg_pull": 0.15, "feh_offset": -0.08},
    )
    got = errors.apply(truth, np.random.default_rng(1))
    # Teff: slope and intercept of a straight-line fit, residual scatter = the noise
    slope, intercept = np.polyfit(truth[:, 0], got[:, 0], 1)
    assert slope == pytest.approx(1.02, abs=2e-3) and intercept == pytest.approx(80.0, abs=15)
    # log g: compressed 15% towards 3.5 dex
    slope, intercept = np.polyfit(truth[:, 1], got[:, 1], 1)
    assert slope == pytest.approx(0.85, abs=3e-3)
    assert intercept / (1 - slope) == pytest.approx(3.5, abs=0.02)
    # [Fe/H]: offset, noise
    diff = got[:, 2] - truth[:, 2]
    assert diff.mean() == pytest.approx(-0.08, abs=2e-3) and diff.std() == pytest.approx(
        0.1, rel=0.02
    )
    np.testing.assert_allclose(errors.systematic(truth)[:, 2], truth[:, 2] - 0.08)
    with pytest.raises(ValueError, match="unknown label bias"):
        LabelErrors.from_config([0, 0, 0], {"teff_shift": 1.0})
    with pytest.raises(ValueError, match="logg_pull"):
        LabelErrors(logg_pull=1.5)


def test_demo_pairs_a_subset_at_accurate_labels():
    from sost_jax.config import load_settings
    from sost_jax.demo.reference import reference_labels_for_pairs

    rng = np.random.default_rng(2)
    truth = np.stack(
        [rng.uniform(4000, 7000, 1000), rng.uniform(1, 5, 1000), rng.uniform(-1, 0.3, 1000)],
        axis=1,
    )
    settings = load_settings(
        "configs/cpu.py", ["demo.label_bias.teff_offset=80.0", "demo.pair_fraction=0.05"]
    )
    labels = reference_labels_for_pairs(truth, settings.demo, settings.mock.seed)
    paired = np.isfinite(labels).all(axis=1)
    assert paired.sum() == 50 and np.isnan(labels[~paired]).all()
    # the subset's labels carry no bias: mean Teff error well inside 80 K
    assert abs((labels[paired, 0] - truth[paired, 0]).mean()) < 30
    demo = dataclasses.replace(settings.demo, pair_fraction=1.0)
    biased = reference_labels_for_pairs(truth, demo, settings.mock.seed)
    assert (biased[:, 0] - truth[:, 0]).mean() == pytest.approx(80.0, abs=10)
    with pytest.raises(ValueError, match="pair_fraction"):
        load_settings("configs/cpu.py", ["demo.pair_fraction=0.0"])
