"""Synthetic partners: row-aligned with the observed store, the emulator's flux at each
star's labels, zero weight where a star cannot be paired; batches carry the partner rows."""

import jax
import numpy as np
import pytest

from sost_jax.batches import BatchStream, Position
from sost_jax.emulator import Emulator, EmulatorSettings, PayneMLP, Scaler
from sost_jax.pairing import paired_store, partner_rows
from sost_jax.store import PreparedStore, StoreWriter

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
