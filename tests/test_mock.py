"""Tests of the mock survey simulator (sost_jax.mock)."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sost_jax.constants import C_KMS
from sost_jax.data.preprocess import air_to_vac
from sost_jax.mock import (
    COMPONENTS,
    MASK_BAD_PIXEL,
    MASK_COSMIC,
    MockSettings,
    band_snr,
    continuum,
    default_wave,
    feature_strengths,
    grid_parameters,
    lamost_wavelength,
    mock_feature_table,
    observed_spectra,
    sample_parameters,
    synthetic_spectra,
    write_lamost_fits,
    write_mock_lamost_survey,
)

REAL_LAMOST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lamost_dr10"
REAL_FILE = REAL_LAMOST / "3703110.fits"


@pytest.fixture(scope="module")
def cfg():
    return MockSettings()


@pytest.fixture(scope="module")
def wave(cfg):
    return default_wave(cfg)


def _depth(params, wave, cfg, lo, hi):
    """Mean continuum-normalised depth of the synthetic spectra in [lo, hi] Å."""
    params = np.asarray(params, dtype=np.float64)
    flux = synthetic_spectra(params, wave, cfg)
    sel = (wave >= lo) & (wave <= hi)
    return 1.0 - (flux / continuum(params, wave))[:, sel].mean(axis=1)


# --- configuration -------------------------------------------------------------------


def test_default_settings_are_valid_and_round_trip(cfg):
    assert MockSettings.from_dict(cfg.to_dict()) == cfg
    assert default_wave(cfg).shape == (4800,)
    assert default_wave(cfg)[[0, -1]].tolist() == [3900.0, 8699.0]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("noise.snr_min", -5.0, "noise.snr_min"),
        ("noise.snr_max", 5.0, "noise.snr_max"),
        ("lsf.resolution", 0.0, "lsf.resolution"),
        ("synthetic.resolution", -1800.0, "synthetic.resolution"),
        ("mask.bad_fraction", 1.5, "mask.bad_fraction"),
        ("cosmic.flag_probability", -0.1, "cosmic.flag_probability"),
        ("lsf.lorentz_fraction", 2.0, "lsf.lorentz_fraction"),
        ("wave.fine_max", 3000.0, "wave.fine_max"),
        ("seed", -1, "seed"),
        ("chunk_size", 0, "chunk_size"),
        ("noise.snr_band", (5500.0, 4000.0), "noise.snr_band"),
        ("tellurics.airmass_min", 0.5, "tellurics.airmass_min"),
        ("fluxcal.amplitude", float("nan"), "fluxcal.amplitude"),
    ],
)
def test_settings_reject_nonsense_with_clear_message(path, value, message):
    *parents, leaf = path.split(".")
    section = {leaf: value}
    for part in reversed(parents):
        section = {part: section}
    with pytest.raises(ValueError, match="mock\\." + message.replace(".", r"\.")):
        MockSettings.from_dict(section)


def test_settings_reject_unknown_telluric_species_and_unknown_keys():
    o2_a = {**MockSettings().tellurics.bands["o2_a"].to_dict(), "species": "co2"}
    with pytest.raises(ValueError, match=r"mock\.tellurics\.bands\.o2_a\.species"):
        MockSettings.from_dict({"tellurics": {"bands": {"o2_a": o2_a}}})
    with pytest.raises(ValueError, match=r"did you mean 'mock\.noise\.snr_min'"):
        MockSettings.from_dict({"noise": {"snr_mn": 5.0}})
    with pytest.raises(ValueError, match=r"mock\.noise\.snr_min"):
        replace(MockSettings().noise, snr_min=-1.0)


# --- parameters ----------------------------------------------------------------------


def test_sample_parameters_deterministic_and_in_range(cfg):
    a = sample_parameters(np.random.default_rng(1), 5000, cfg)
    b = sample_parameters(np.random.default_rng(1), 5000, cfg)
    c = sample_parameters(np.random.default_rng(2), 5000, cfg)
    assert a.shape == (5000, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a[:, 0].min() >= 3500 and a[:, 0].max() <= 8000
    assert a[:, 1].min() >= 0 and a[:, 1].max() <= 5
    assert a[:, 2].min() >= -2.5 and a[:, 2].max() <= 0.5
    # The ranges are actually explored.
    assert a[:, 0].min() < 3700 and a[:, 0].max() > 7700
    assert a[:, 1].min() < 0.8 and a[:, 2].min() < -1.8


def test_parameter_distribution_is_clumpy(cfg):
    params, comp = sample_parameters(np.random.default_rng(3), 20000, cfg, return_components=True)
    teff, logg, feh = params.T
    red_clump = (teff > 4450) & (teff < 5050) & (logg > 2.2) & (logg < 2.65)
    assert 0.12 < red_clump.mean() < 0.32
    dwarfs = logg > 3.9
    assert 0.45 < dwarfs.mean() < 0.75
    assert 0.02 < (feh < -1.0).mean() < 0.15
    assert abs(np.median(feh) + 0.2) < 0.1
    # Components follow the configured weights.
    frac = np.bincount(comp, minlength=len(COMPONENTS)) / comp.size
    weights = np.array([getattr(cfg.params.weights, name) for name in COMPONENTS])
    np.testing.assert_allclose(frac, weights / weights.sum(), atol=0.015)
    # Clumpy: a tenth of the occupied (Teff, log g) cells hold most of the stars.
    hist, _, _ = np.histogram2d(teff, logg, bins=[45, 50], range=[[3500, 8000], [0, 5]])
    counts = np.sort(hist[hist > 0])[::-1]
    assert counts[: max(1, counts.size // 10)].sum() > 0.4 * counts.sum()


def test_grid_parameters(cfg):
    grid = grid_parameters(**cfg.grid.to_dict())
    assert grid.shape == (19 * 11 * 7, 3)
    assert np.unique(grid[:, 0]).tolist() == list(np.arange(3500.0, 8001.0, 250.0))
    assert np.unique(grid[:, 2]).tolist() == [-2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5]
    coarse = grid_parameters(teff_step=1000.0, logg_step=2.5, feh_step=1.5)
    assert coarse.shape == (5 * 3 * 3, 3)


# --- features ------------------------------------------------------------------------


def test_feature_table_and_strengths(cfg):
    np.testing.assert_allclose(air_to_vac(6562.80), 6564.61, atol=0.01)
    table = mock_feature_table(cfg)
    assert len(set(table.names)) == table.n_features
    for group in ("balmer", "ca_hk", "ca_triplet", "ca_i", "mg", "na", "fe_i", "molecule"):
        assert group in table.groups
    assert sum(g == "fe_i" for g in table.groups) >= 30
    assert sum(n.startswith("TiO") for n in table.names) == 10
    s = feature_strengths(np.array([[5777.0, 4.44, 0.0], [3600.0, 4.8, -1.0]]), table)
    assert s.shape == (2, table.n_features)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)


def test_tio_bands_only_in_cool_stars(cfg, wave):
    depth = _depth([[3600.0, 4.8, 0.0], [6000.0, 4.3, 0.0]], wave, cfg, 7060.0, 7150.0)
    assert depth[0] > 0.2
    assert depth[1] < 0.03
    assert depth[0] > 10 * depth[1]


def test_balmer_deeper_in_hot_stars(cfg, wave):
    hbeta = float(air_to_vac(4861.33))
    depth = _depth([[7500.0, 4.2, 0.0], [4500.0, 4.6, 0.0]], wave, cfg, hbeta - 2, hbeta + 2)
    assert depth[0] > depth[1] + 0.2


def test_balmer_wings_broader_at_high_gravity(cfg, wave):
    hbeta = float(air_to_vac(4861.33))
    wing = _depth([[7000.0, 4.5, 0.0], [7000.0, 2.5, 0.0]], wave, cfg, hbeta + 8, hbeta + 14)
    assert wing[0] > 1.3 * wing[1]


def test_metal_line_deeper_at_solar_metallicity(cfg, wave):
    mgb = float(air_to_vac(5183.60))
    depth = _depth([[5000.0, 4.5, 0.0], [5000.0, 4.5, -2.0]], wave, cfg, mgb - 1.5, mgb + 1.5)
    assert depth[0] > depth[1] + 0.2


# --- simulators ----------------------------------------------------------------------


def test_continuum_shape_and_counts(cfg):
    params = np.array([[3500.0, 4.8, 0.0], [5800.0, 4.4, 0.0], [8000.0, 2.0, -2.0]])
    wave = np.array([3900.0, 6000.0, 8700.0])
    cont = continuum(params, wave)
    np.testing.assert_allclose(cont[:, 1], 1000.0, rtol=1e-12)
    assert cont[0, 0] < cont[0, 2]  # cool stars are red
    assert cont[2, 0] > cont[2, 2]  # hot stars are blue
    assert np.all((cont > 30) & (cont < 5000))
    # A per-star grid (2-D wave) gives the same values.
    np.testing.assert_allclose(continuum(params, np.tile(wave, (3, 1))), cont)


def test_synthetic_deterministic_shapes_finite(cfg, wave):
    params = sample_parameters(np.random.default_rng(0), 12, cfg)
    a = synthetic_spectra(params, wave, cfg)
    b = synthetic_spectra(params, wave, cfg)
    assert a.shape == (12, wave.size) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.all(a > 0)
    # Realistic counts.
    assert 30 < np.median(a) < 5000


def test_observed_deterministic_per_seed_and_independent_of_chunks(cfg, wave):
    params = sample_parameters(np.random.default_rng(0), 40, cfg)
    a = observed_spectra(params, wave, cfg, np.random.default_rng(7))
    b = observed_spectra(params, wave, cfg, np.random.default_rng(7))
    other = replace(cfg, chunk_size=7, num_threads=1)
    c = observed_spectra(params, wave, other, np.random.default_rng(7))
    d = observed_spectra(params, wave, cfg, np.random.default_rng(8))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        if key in ("flux", "ivar"):  # batched matrix products and FFTs round per batch size
            np.testing.assert_allclose(a[key], c[key], rtol=1e-5, atol=1e-30, err_msg=key)
        else:  # every random draw is the same
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
    assert not np.array_equal(a["flux"], d["flux"])
    assert a["flux"].shape == (40, wave.size) and a["flux"].dtype == np.float32
    assert a["mask"].dtype == bool and a["ivar"].dtype == np.float32
    for key in ("snr", "rv_true", "z_header", "z_err", "airmass", "water", "flux_scale"):
        assert a[key].shape == (40,)
    assert np.all(np.isfinite(a["flux"])) and np.all(np.isfinite(a["ivar"]))
    assert np.all(a["ivar"] >= 0)
    np.testing.assert_array_equal(a["mask"], a["ivar"] == 0)
    assert np.all((a["snr"] >= 10) & (a["snr"] <= 300))


def test_gap_seed_changes_only_the_observed_domain(cfg, wave):
    params = np.array([[5800.0, 4.4, 0.0]])
    other = replace(cfg, gap=replace(cfg.gap, seed=cfg.gap.seed + 1))
    np.testing.assert_array_equal(
        synthetic_spectra(params, wave, cfg), synthetic_spectra(params, wave, other)
    )
    a = observed_spectra(params, wave, cfg, noiseless=True)["flux"]
    b = observed_spectra(params, wave, other, noiseless=True)["flux"]
    assert not np.allclose(a, b, rtol=1e-3)


def test_oracle_differs_from_synthetic_by_a_few_percent_mostly_in_features(cfg, wave):
    params = sample_parameters(np.random.default_rng(4), 60, cfg)
    syn = synthetic_spectra(params, wave, cfg).astype(np.float64)
    oracle = observed_spectra(params, wave, cfg, noiseless=True)
    obs = oracle["flux"].astype(np.float64)
    assert np.all(np.isinf(oracle["snr"])) and np.all(oracle["rv_true"] == 0)
    syn_n = syn / np.median(syn, axis=1, keepdims=True)
    obs_n = obs / np.median(obs, axis=1, keepdims=True)
    rel = np.abs(obs_n - syn_n) / syn_n
    assert 0.01 < rel.mean() < 0.08
    for i in range(len(params)):
        assert np.corrcoef(syn_n[i], obs_n[i])[0, 1] > 0.9
    # Larger in absorption features than in the continuum (tellurics excluded).
    depth = 1.0 - syn / continuum(params, wave)
    telluric = np.zeros(wave.size, dtype=bool)
    for band in cfg.tellurics.bands.values():
        telluric |= (wave > band.start - 30) & (wave < band.end + 30)
    in_lines = (depth > 0.1) & ~telluric
    in_continuum = (depth < 0.01) & ~telluric
    assert rel[in_lines].mean() > 2.0 * rel[in_continuum].mean()


def test_noise_matches_requested_snr_and_ivar(cfg, wave):
    quiet = MockSettings.from_dict({"cosmic": {"rate": 0.0}, "mask": {"bad_fraction": 0.0}})
    params = np.tile([[5800.0, 4.3, -0.2]], (9, 1))
    requested = np.repeat([15.0, 50.0, 200.0], 3)
    out = observed_spectra(
        params, wave, quiet, np.random.default_rng(11), snr=requested, return_truth=True
    )
    np.testing.assert_array_equal(out["snr"], requested)
    band = (wave >= 4000) & (wave <= 5500)
    noise = (out["flux"] - out["flux_clean"])[:, band].astype(np.float64)
    clean = out["flux_clean"][:, band].astype(np.float64)
    measured = np.median(clean, axis=1) / noise.std(axis=1)
    np.testing.assert_allclose(measured, requested, rtol=0.2)
    # ivar is consistent with the noise actually added.
    pulls = noise * np.sqrt(out["ivar"][:, band])
    np.testing.assert_allclose(pulls.std(axis=1), 1.0, atol=0.05)
    np.testing.assert_allclose(
        band_snr(out["flux_clean"], out["ivar"], wave, (4000, 5500)), requested, rtol=0.01
    )
    assert not out["mask"].any()


def test_rv_shift_and_header_redshift(cfg, wave):
    params = np.array([[6500.0, 4.2, 0.0]] * 2)
    out = observed_spectra(
        params,
        wave,
        cfg,
        np.random.default_rng(2),
        snr=1000.0,
        rv=[0.0, 300.0],
        return_truth=True,
    )
    # Best-matching velocity shift of the continuum-normalised spectra, 4000-6800 Å.
    norm = out["flux_clean"] / out["continuum"]
    sel = (wave > 4000) & (wave < 6800)
    trials = np.arange(200.0, 400.0, 2.0)
    chi2 = [
        np.sum((norm[1, sel] - np.interp(wave[sel] / (1 + v / C_KMS), wave, norm[0])) ** 2)
        for v in trials
    ]
    assert abs(trials[int(np.argmin(chi2))] - 300.0) <= 4.0
    resid = out["z_header"] * C_KMS - out["rv_true"]
    assert np.all(np.abs(resid) < 6 * cfg.rv.residual_sigma)
    # Tellurics stay in the observed frame.
    o2 = (wave > 7600) & (wave < 7615)
    assert out["telluric"][:, o2].max() < 0.9
    np.testing.assert_allclose(
        np.log(out["telluric"][0]) / out["airmass"][0],
        np.log(out["telluric"][1]) / out["airmass"][1],
        atol=0.05,
    )


def test_masks_and_cosmic_rays(cfg, wave):
    noisy = MockSettings.from_dict(
        {"cosmic": {"rate": 5.0, "flag_probability": 0.5}, "mask": {"bad_fraction": 0.01}}
    )
    params = sample_parameters(np.random.default_rng(0), 20, cfg)
    out = observed_spectra(params, wave, noisy, np.random.default_rng(3), return_truth=True)
    hit = out["cosmic"]
    flagged = (out["ormask"] & MASK_COSMIC) != 0
    assert hit.sum() > 100
    assert 0 < (hit & flagged).sum() < hit.sum()  # the pipeline misses some hits
    assert np.all(out["ivar"][flagged] == 0)
    spikes = hit & ~flagged & (out["andmask"] == 0)
    assert np.all(out["flux"][spikes] > out["flux_clean"][spikes])
    bad = (out["andmask"] & MASK_BAD_PIXEL) != 0
    assert 0.005 < bad.mean() < 0.02
    assert np.all(out["flux"][bad] == 0) and np.all(out["ivar"][bad] == 0)
    assert np.all((out["ormask"] & MASK_BAD_PIXEL)[bad] != 0)
    np.testing.assert_array_equal(out["mask"], out["ivar"] == 0)


def test_bad_inputs_raise(cfg, wave):
    with pytest.raises(ValueError, match="params"):
        synthetic_spectra(np.zeros((3, 2)), wave, cfg)
    with pytest.raises(ValueError, match="wave"):
        synthetic_spectra(np.array([[5000.0, 4.0, 0.0]]), np.linspace(3000, 9000, 10), cfg)
    with pytest.raises(ValueError, match="rng"):
        observed_spectra(np.array([[5000.0, 4.0, 0.0]]), wave, cfg)


# --- LAMOST files --------------------------------------------------------------------


def test_mock_lamost_survey_files(tmp_path, cfg):
    labels_path = write_mock_lamost_survey(tmp_path / "a", 4, cfg, seed=5, start_obsid=7000)
    with open(labels_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "id", "obsid", "filename", "ra", "dec", "snr_g", "teff", "logg", "feh", "rv",
    ]  # fmt: skip
    assert [r["obsid"] for r in rows] == ["7000", "7001", "7002", "7003"]

    wave = lamost_wavelength()
    assert wave.size == 3909
    np.testing.assert_allclose(wave[0], 3699.9863)
    np.testing.assert_allclose(np.diff(np.log10(wave)), 1e-4, rtol=1e-9)

    for row in rows:
        with fits.open(tmp_path / "a" / row["filename"]) as hdul:
            hdul.verify("exception")
            assert len(hdul) == 2
            header = hdul[0].header
            assert header["OBSID"] == int(row["obsid"])
            assert header["RA"] == pytest.approx(float(row["ra"]), abs=1e-6)
            assert header["DEC"] == pytest.approx(float(row["dec"]), abs=1e-6)
            assert header["VACUUM"] is True and header["HELIO"] is True
            assert header["CLASS"] == "STAR"
            assert abs(header["Z"] * C_KMS - float(row["rv"])) < 6 * cfg.rv.residual_sigma
            assert header["SNRG"] == pytest.approx(float(row["snr_g"]), rel=0.25)
            table = hdul[1]
            assert table.name == "COADD" and len(table.data) == 1
            assert table.columns.names == [
                "FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK", "NORMALIZATION",
            ]  # fmt: skip
            assert table.columns.formats == ["3909E"] * 6
            data = table.data[0]
            np.testing.assert_allclose(data["WAVELENGTH"], wave, rtol=1e-7)
            assert np.all(np.isfinite(data["FLUX"])) and np.all(data["IVAR"] >= 0)
            assert 0.5 < np.median(data["NORMALIZATION"]) < 1.1

    # Deterministic per seed: byte-identical files.
    write_mock_lamost_survey(tmp_path / "b", 4, cfg, seed=5, start_obsid=7000)
    for row in rows:
        a = (tmp_path / "a" / row["filename"]).read_bytes()
        assert a == (tmp_path / "b" / row["filename"]).read_bytes()


@pytest.mark.skipif(not REAL_FILE.exists(), reason="real LAMOST file not available")
def test_mock_files_share_the_real_lamost_layout(tmp_path, cfg):
    labels_path = write_mock_lamost_survey(tmp_path, 1, cfg, seed=0)
    with open(labels_path, newline="") as f:
        filename = next(csv.DictReader(f))["filename"]
    with fits.open(REAL_FILE) as real, fits.open(tmp_path / filename) as mock:
        assert [h.name for h in mock] == [h.name for h in real]
        assert [type(h) for h in mock] == [type(h) for h in real]
        assert mock[1].columns.names == real[1].columns.names
        assert mock[1].columns.formats == real[1].columns.formats
        assert mock[1].data.dtype == real[1].data.dtype
        main_keys = [
            "FILENAME", "OBSID", "RA", "DEC", "DESIG", "FIBERID", "Z", "Z_ERR", "CLASS",
            "SUBCLASS", "VACUUM", "HELIO", "COEFF0", "COEFF1", "SNRU", "SNRG", "SNRR",
            "SNRI", "SNRZ",
        ]  # fmt: skip
        for key in main_keys:
            assert key in mock[0].header, key
            assert type(mock[0].header[key]) is type(real[0].header[key]), key
        np.testing.assert_allclose(
            mock[1].data["WAVELENGTH"][0], real[1].data["WAVELENGTH"][0], rtol=2e-7
        )


def test_write_lamost_fits_roundtrip(tmp_path):
    wave = lamost_wavelength()
    rng = np.random.default_rng(0)
    flux = rng.normal(500, 10, wave.size).astype(np.float32)
    ivar = np.full(wave.size, 0.01, dtype=np.float32)
    andmask = np.zeros(wave.size, dtype=np.int32)
    ormask = andmask.copy()
    ormask[10] = MASK_COSMIC
    path = tmp_path / "one.fits"
    write_lamost_fits(
        path, wave, flux, ivar, andmask, ormask,
        {"OBSID": 42, "RA": 10.5, "DEC": -3.25, "Z": 1e-4, "SNRG": 33.3, "EXTRA": "yes"},
    )  # fmt: skip
    with fits.open(path) as hdul:
        hdul.verify("exception")
        assert hdul[0].header["OBSID"] == 42
        assert hdul[0].header["DEC"] == -3.25
        assert hdul[0].header["SNRG"] == 33.3
        assert hdul[0].header["EXTRA"] == "yes"
        assert hdul[0].header["FILENAME"] == "one.fits"
        data = hdul[1].data[0]
        np.testing.assert_array_equal(data["FLUX"], flux)
        np.testing.assert_array_equal(data["ORMASK"][10], float(MASK_COSMIC))
        np.testing.assert_array_equal(data["NORMALIZATION"], 1.0)
    with pytest.raises(ValueError, match="IVAR"):
        write_lamost_fits(path, wave, flux, ivar[:-1], andmask, ormask, {})
