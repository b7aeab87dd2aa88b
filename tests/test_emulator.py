"""Emulator: fits a smooth grid at held-out points, early stopping keeps the best epoch, exact
save/load round trip, label scaling, input errors, and a quick fit of the real ck04 grid."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sost_jax.data.store import StoreWriter
from sost_jax.library.emulator import (
    MIN_GRID_POINTS,
    Emulator,
    EmulatorSettings,
    Scaler,
    emulator_from_store,
    load_or_train,
    train_emulator,
)

CK04_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ck04"
FAST = {"hidden": (64, 64), "batch_size": 64, "eval_every": 10}


def smooth_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regular Teff / log g / [Fe/H] grid (702 points) of 100-pixel analytic spectra.

    Eight Gaussian lines whose depths are logistic functions of the labels, on a continuum
    with a Teff-dependent slope; normalised flux between about 0.65 and 1.02.
    """
    axes = np.meshgrid(
        np.arange(4000.0, 7001.0, 250.0),
        np.arange(1.0, 5.01, 0.5),
        np.arange(-2.0, 0.51, 0.5),
        indexing="ij",
    )
    labels = np.stack([a.ravel() for a in axes], axis=1)
    wave = np.linspace(4000.0, 6000.0, 100)
    t = (labels[:, :1] - 5500.0) / 1500.0
    g = (labels[:, 1:2] - 3.0) / 2.0
    f = labels[:, 2:3] + 0.75
    k = np.arange(8.0)[None, :]
    depth = 0.35 / (1.0 + np.exp(-(f * (1.0 + 0.1 * k) - 0.8 * t * np.cos(k) + 0.3 * g)))
    centres = np.linspace(4100.0, 5900.0, 8)
    profiles = np.exp(-0.5 * ((wave[None, :] - centres[:, None]) / 40.0) ** 2)
    flux = 1.0 - depth @ profiles + 0.02 * t * (wave[None, :] - 5000.0) / 1000.0
    return labels, flux.astype(np.float32), wave


@pytest.fixture(scope="module")
def fitted() -> tuple[Emulator, dict, np.ndarray, np.ndarray]:
    labels, flux, wave = smooth_grid()
    settings = EmulatorSettings(**FAST, max_epochs=400, patience=100)
    emulator, report = train_emulator(labels, flux, settings, wave=wave, progress=False)
    return emulator, report, labels, flux


def test_emulator_fits_held_out_grid_points_of_a_smooth_grid(fitted) -> None:
    emulator, report, labels, flux = fitted
    valid = np.asarray(report["valid_indices"])
    assert report["n_train"] + report["n_valid"] == len(labels) == report["n_grid"]
    assert report["n_valid"] == 70 and len(valid) == 70
    # Predicting the grid's mean spectrum would give a median |residual| of about 0.03.
    assert report["val_median_abs_residual"] < 1e-3
    assert report["val_p95_abs_residual"] < 5e-3
    assert report["epochs"] == 400 and report["minutes"] > 0
    out = emulator.generate(labels[valid])
    assert out.shape == (70, 100) and out.dtype == jnp.float32
    residual = np.abs(np.asarray(out) - flux[valid])
    np.testing.assert_allclose(np.median(residual), report["val_median_abs_residual"], rtol=1e-4)
    # Any labels inside the span, not only grid nodes.
    assert emulator.generate(labels[:1] + np.array([[125.0, 0.25, 0.25]])).shape == (1, 100)


def test_generate_is_traceable_for_label_gradients(fitted) -> None:
    emulator, _, labels, _ = fitted
    x = jnp.asarray(labels[:4], jnp.float32)
    grads = jax.jit(jax.grad(lambda lab: jnp.sum(emulator.generate(lab))))(x)
    assert grads.shape == (4, 3) and bool(jnp.all(jnp.isfinite(grads)))


def test_early_stopping_keeps_the_parameters_of_the_best_epoch() -> None:
    labels, flux, wave = smooth_grid()
    rng = np.random.default_rng(1)
    rows = rng.choice(len(labels), 80, replace=False)
    noisy = flux[rows] + rng.normal(0.0, 0.03, (80, 100)).astype(np.float32)
    settings = EmulatorSettings(
        hidden=(128, 128),
        batch_size=16,
        max_epochs=2000,
        patience=40,
        eval_every=5,
        learning_rate=3e-3,
        lr_final_fraction=1.0,
        valid_fraction=0.25,
    )
    emulator, report = train_emulator(labels[rows], noisy, settings, progress=False)
    # 60 noisy points overfit quickly: the held-out loss turns up and training stops.
    assert report["stopped_by"] == "patience"
    assert report["epochs"] - report["best_epoch"] == 40 < report["epochs"]
    history = report["history"]
    assert min(history["val_loss"]) == report["best_val_loss"]
    assert history["val_loss"][-1] > report["best_val_loss"]
    valid = np.asarray(report["valid_indices"])
    residual = np.asarray(emulator.generate(labels[rows][valid])) - noisy[valid]
    np.testing.assert_allclose(np.mean(np.abs(residual)), report["best_val_loss"], rtol=1e-4)


def test_save_load_round_trip_gives_identical_spectra(fitted, tmp_path: Path) -> None:
    emulator, _, labels, _ = fitted
    path = emulator.save(tmp_path / "emu")
    assert path.is_absolute() and (path / "emulator.json").exists()
    loaded = Emulator.load(tmp_path / "emu")
    assert loaded.settings == emulator.settings
    assert np.array_equal(loaded.wave, emulator.wave)
    assert np.array_equal(loaded.scaler.low, emulator.scaler.low)
    assert np.array_equal(loaded.scaler.high, emulator.scaler.high)
    query = labels[::37] + np.array([[10.0, 0.1, -0.05]])
    np.testing.assert_array_equal(
        np.asarray(loaded.generate(query)), np.asarray(emulator.generate(query))
    )
    with pytest.raises(FileExistsError, match="overwrite"):
        emulator.save(path)
    emulator.save(path, overwrite=True)
    record = json.loads((path / "emulator.json").read_text())
    record["version"] = 99
    (path / "emulator.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="version"):
        Emulator.load(path)
    with pytest.raises(FileNotFoundError, match="not a saved emulator"):
        Emulator.load(tmp_path)


def test_scaler_maps_grid_minimum_and_maximum_to_minus_and_plus_half(fitted) -> None:
    emulator, _, labels, _ = fitted
    scaler = Scaler.fit(labels)
    assert np.array_equal(emulator.scaler.low, scaler.low)
    assert np.array_equal(emulator.scaler.high, scaler.high)
    extremes = np.stack([labels.min(axis=0), labels.max(axis=0)])
    np.testing.assert_allclose(scaler.scale(extremes), [[-0.5] * 3, [0.5] * 3], atol=1e-7)
    middle = scaler.scale(np.array([[5500.0, 3.0, -0.75]]))
    np.testing.assert_allclose(middle, 0.0, atol=1e-7)
    np.testing.assert_allclose(scaler.unscale(scaler.scale(labels)), labels, rtol=1e-6)
    # A label with one value on the grid maps to -0.5 rather than dividing by zero.
    flat = Scaler.fit(np.array([[5000.0, 4.0, 0.0], [6000.0, 4.5, 0.0]]))
    np.testing.assert_allclose(flat.scale(np.array([[5500.0, 4.25, 0.0]])), [[0.0, 0.0, -0.5]])


def test_bad_inputs_and_settings_are_refused_with_clear_errors(fitted) -> None:
    emulator, _, labels, flux = fitted
    with pytest.raises(ValueError, match=r"params must be \[N, 3\]"):
        train_emulator(labels[:, :2], flux, progress=False)
    with pytest.raises(ValueError, match="N = 702"):
        train_emulator(labels, flux[:10], progress=False)
    with pytest.raises(ValueError, match="weight must have"):
        train_emulator(labels, flux, weight=flux[:, :5], progress=False)
    few = labels[:10].copy()
    few[3:] = np.nan
    with (
        pytest.warns(UserWarning, match="dropped 7 of 10"),
        pytest.raises(ValueError, match=f"at least {MIN_GRID_POINTS} grid points .* got 3"),
    ):
        train_emulator(few, flux[:10], progress=False)
    with pytest.raises(ValueError, match=r"labels must be \[N, 3\]"):
        emulator.generate(labels[0])
    with pytest.raises(ValueError, match="activation"):
        EmulatorSettings(activation="relu6")
    with pytest.raises(ValueError, match="valid_fraction"):
        EmulatorSettings(valid_fraction=1.0)
    with pytest.raises(ValueError, match="hidden"):
        EmulatorSettings(hidden=())
    with pytest.raises(
        ValueError,
        match="unknown config key .emulator.epochs.; did you mean .emulator.max_epochs.?",
    ):
        EmulatorSettings.from_dict({"hidden": [8], "epochs": 3})
    assert EmulatorSettings.from_dict(EmulatorSettings().to_dict()) == EmulatorSettings()


def test_emulator_from_store_drops_rows_without_labels(tmp_path: Path) -> None:
    labels, flux, wave = smooth_grid()
    labels = labels.astype(np.float32)
    labels[:5, 1] = np.nan
    weight = np.ones_like(flux)
    weight[:, :3] = 0.0  # pixels without data stay out of the loss
    flux[:, :3] = 1e3
    writer = StoreWriter(tmp_path / "grid", wave, {"source": "test"}, n_shards=1)
    writer.write_shard(0, flux, weight, labels, {"id": np.arange(len(flux)).astype(str)})
    settings = EmulatorSettings(**FAST, max_epochs=20, patience=100)
    with pytest.warns(UserWarning, match="dropped 5 of 702"):
        emulator, report = emulator_from_store(tmp_path / "grid", settings, progress=False)
    assert report["n_dropped_nan_labels"] == 5 and report["n_grid"] == 702
    assert report["n_train"] + report["n_valid"] == 697
    assert min(report["valid_indices"]) >= 5  # indices refer to the store's rows
    assert report["val_p95_abs_residual"] < 0.1  # the masked 1e3 pixels are not counted
    assert np.array_equal(emulator.wave, wave) and emulator.n_pixels == 100


def test_load_or_train_reuses_an_emulator_of_the_same_store_and_settings(tmp_path: Path) -> None:
    labels, flux, wave = smooth_grid()
    writer = StoreWriter(tmp_path / "grid", wave, {"source": "test"}, n_shards=1)
    ids = np.arange(len(flux)).astype(str)
    writer.write_shard(0, flux, np.ones_like(flux), labels.astype(np.float32), {"id": ids})
    settings = EmulatorSettings(**FAST, max_epochs=5, patience=100)
    first, report = load_or_train(tmp_path / "emu", tmp_path / "grid", settings, progress=False)
    stamp = (tmp_path / "emu" / "emulator.json").stat().st_mtime_ns
    again, _ = load_or_train(tmp_path / "emu", tmp_path / "grid", settings, progress=False)
    assert (tmp_path / "emu" / "emulator.json").stat().st_mtime_ns == stamp  # loaded
    np.testing.assert_array_equal(again.generate(labels[:3]), first.generate(labels[:3]))
    assert report["path"] == str((tmp_path / "emu").absolute()) and "history" not in report
    other = EmulatorSettings(**FAST, max_epochs=6, patience=100)
    _, retrained = load_or_train(tmp_path / "emu", tmp_path / "grid", other, progress=False)
    assert retrained["settings"]["max_epochs"] == 6
    assert (tmp_path / "emu" / "emulator.json").stat().st_mtime_ns != stamp
    stamp = (tmp_path / "emu" / "emulator.json").stat().st_mtime_ns
    # an emulator saved by an older sost-jax (no store or settings recorded) is kept
    report_path = tmp_path / "emu" / "report.json"
    report = json.loads(report_path.read_text())
    legacy = {k: v for k, v in report.items() if k not in ("store_fingerprint", "settings")}
    report_path.write_text(json.dumps(legacy))
    load_or_train(tmp_path / "emu", tmp_path / "grid", settings, progress=False)
    assert (tmp_path / "emu" / "emulator.json").stat().st_mtime_ns == stamp


def test_ck04_grid_held_out_error(tmp_path: Path) -> None:
    """The real Castelli-Kurucz grid, Teff 3500-8000 K, on a coarse 3900-7400 Å grid."""
    if not CK04_DIR.is_dir():
        pytest.skip(f"real ck04 grid {CK04_DIR} is absent")
    from sost_jax.data.io.grids import read_ck04
    from sost_jax.data.prepare import PrepareSettings, to_grid
    from sost_jax.data.preprocess import normalise

    grid = read_ck04(CK04_DIR, teff_range=(3500, 8000), wave_range=(3700, 7600))
    prep = PrepareSettings(
        grid_start=3900, grid_stop=7400, grid_step=10, degrade_fwhm=40, rest_frame=False
    )
    flux, ivar = to_grid(
        grid.wave, grid.flux, np.ones_like(grid.flux), prep, medium=grid.meta["medium"]
    )
    norm, weight, _ = normalise(prep.wave, flux, ivar, prep.normalise)
    settings = EmulatorSettings(**FAST, max_epochs=300, learning_rate=3e-3, patience=100)
    emulator, report = train_emulator(
        grid.params, norm, settings, weight=weight, wave=prep.wave, progress=False
    )
    assert report["n_grid"] == len(grid.params) > 1000 and emulator.n_pixels == 351
    # The grid's mean spectrum gives a median of about 0.01 and a 95th percentile of 0.14;
    # a working fit about 6e-4 and 0.02 (the worst are poorly normalised M-type models).
    assert report["val_median_abs_residual"] < 3e-3
    assert report["val_p95_abs_residual"] < 0.05
