"""Wavelength frames, resampling, degrading and normalisation against analytic cases."""

import jax
import numpy as np
import pytest

from sost_jax.constants import C_KMS, FWHM_PER_SIGMA
from sost_jax.data.preprocess import (
    NormaliseSettings,
    air_to_vac,
    bspline_basis,
    degrade_to_fwhm,
    degrade_to_resolution,
    linear_grid,
    log_linear_grid,
    normalise,
    resample,
    rv_to_z,
    to_rest_frame,
    vac_to_air,
)
from sost_jax.data.preprocess.continuum import ROWS_PER_CALL, knot_interval_pixels


def test_default_grid_has_4800_pixels():
    wave = linear_grid(3900.0, 8699.0, 1.0)
    assert wave.shape == (4800,)
    assert wave[0] == 3900.0 and wave[-1] == 8699.0


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="bad wavelength grid"):
        linear_grid(5000.0, 4000.0, 1.0)


def test_air_vacuum_known_line_and_round_trip():
    # H-alpha: 6564.61 Å in vacuum, 6562.80 Å in air.
    assert vac_to_air(np.array([6564.61]))[0] == pytest.approx(6562.80, abs=0.01)
    wave = np.linspace(3000.0, 10000.0, 50)
    np.testing.assert_allclose(air_to_vac(vac_to_air(wave)), wave, atol=1e-6)
    assert vac_to_air(np.array([1500.0]))[0] == 1500.0


def test_rest_frame_shift():
    z = rv_to_z(np.array([30.0, -60.0]))
    np.testing.assert_allclose(z, [30.0 / C_KMS, -60.0 / C_KMS], rtol=1e-3)
    wave = np.array([5000.0, 6000.0])
    rest = to_rest_frame(wave, z)
    assert rest.shape == (2, 2)
    np.testing.assert_allclose(rest[0] * (1 + z[0]), wave)


def test_resample_reproduces_linear_function_and_propagates_ivar():
    wave = np.linspace(4000.0, 5000.0, 101)  # 10 Å pixels
    flux = (2.0 + 0.001 * wave)[None, :]
    ivar = np.full_like(flux, 4.0)  # sigma 0.5
    new = np.array([3990.0, 4000.0, 4005.0, 4002.5, 5000.0, 5001.0])
    f, iv = resample(wave, flux, ivar, new)
    inside = np.array([False, True, True, True, True, False])
    np.testing.assert_allclose(f[0, inside], 2.0 + 0.001 * new[inside], rtol=1e-6)
    assert np.all(iv[0, ~inside] == 0) and np.all(f[0, ~inside] == 0)
    # halfway: var = 0.25 * (0.25 + 0.25) -> ivar 8; quarter: var = (0.5625 + 0.0625) 0.25
    assert iv[0, 2] == pytest.approx(8.0)
    assert iv[0, 3] == pytest.approx(1.0 / (0.625 * 0.25))
    assert iv[0, 1] == pytest.approx(4.0)


def test_resample_masks_neighbours_of_bad_pixels():
    wave = np.arange(10.0)
    flux = np.ones((1, 10))
    ivar = np.ones((1, 10))
    ivar[0, 5] = 0.0
    f, iv = resample(wave, flux, ivar, np.array([4.0, 4.5, 5.0, 5.5, 6.0]))
    np.testing.assert_array_equal(iv[0] > 0, [True, False, False, False, True])


def test_resample_rows_with_their_own_wavelengths_match_single_calls():
    rng = np.random.default_rng(1)
    base = np.linspace(4000.0, 6000.0, 500)
    waves = base[None, :] * (1 + rng.normal(0, 1e-4, (3, 1)))
    flux = rng.normal(1, 0.1, (3, 500))
    ivar = rng.uniform(0.5, 2, (3, 500))
    new = np.linspace(4100.0, 5900.0, 300)
    f, iv = resample(waves, flux, ivar, new)
    for i in range(3):
        f1, iv1 = resample(waves[i], flux[i : i + 1], ivar[i : i + 1], new)
        np.testing.assert_allclose(f[i], f1[0], rtol=1e-6)
        np.testing.assert_allclose(iv[i], iv1[0], rtol=1e-6)


@pytest.mark.parametrize("own_grids", [False, True])
def test_resample_in_passes_equals_each_row_alone(own_grids: bool) -> None:
    """A chunk longer than one pass (`ROWS_PER_PASS`) gives, row for row, what each spectrum
    resampled alone gives: shared or per-row input grids, per-row output grids."""
    from sost_jax.data.preprocess.resample import ROWS_PER_PASS

    rng = np.random.default_rng(4)
    n = 2 * ROWS_PER_PASS + 5
    base = np.geomspace(4000.0, 6000.0, 400)
    waves = base[None, :] * (1 + rng.normal(0, 1e-4, (n, 1))) if own_grids else base
    flux = rng.normal(1, 0.1, (n, 400)).astype(np.float32)
    ivar = rng.uniform(0.5, 2, (n, 400)).astype(np.float32)
    ivar[rng.random((n, 400)) < 0.02] = 0.0
    new = np.linspace(4100.0, 5900.0, 250)[None, :] * (1 + rng.normal(0, 1e-4, (n, 1)))
    f, iv = resample(waves, flux, ivar, new)
    for i in range(n):
        w = waves[i] if own_grids else waves
        f1, iv1 = resample(w, flux[i : i + 1], ivar[i : i + 1], new[i])
        np.testing.assert_array_equal(f[i], f1[0])
        np.testing.assert_array_equal(iv[i], iv1[0])


def test_shared_grid_in_each_observed_frame_equals_rest_frame_rows():
    """The one-interpolation rest frame (the grid moved into each spectrum's observed frame,
    one shared input grid) gives what shifting each spectrum's own wavelengths gives."""
    from sost_jax.data.prepare import PrepareSettings, to_grid

    rng = np.random.default_rng(2)
    settings = PrepareSettings(grid_start=4500.0, grid_stop=5499.0)
    wave = np.geomspace(4400.0, 5600.0, 900)
    z = rng.uniform(-1e-3, 1e-3, 4)
    flux = rng.normal(1, 0.1, (4, 900))
    ivar = rng.uniform(0.5, 2, (4, 900))
    ivar[1, 100:110] = 0
    fast = to_grid(np.stack([wave] * 4), flux, ivar, settings, z=z)
    slow = resample(to_rest_frame(np.stack([wave] * 4), z), flux, ivar, settings.wave)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-5)
    np.testing.assert_array_equal(fast[1] > 0, slow[1] > 0)


def _second_moment_sigma(x: np.ndarray, y: np.ndarray) -> float:
    w = y / y.sum()
    mu = (w * x).sum()
    return float(np.sqrt((w * (x - mu) ** 2).sum()))


def test_degrade_to_fwhm_adds_widths_in_quadrature_and_conserves_flux():
    wave = linear_grid(4000.0, 6000.0, 0.5)
    sigma0 = 2.0
    line = np.exp(-0.5 * ((wave - 5000.0) / sigma0) ** 2)[None, :]
    fwhm_in = sigma0 * FWHM_PER_SIGMA
    out, _ = degrade_to_fwhm(wave, line, fwhm_out=10.0, fwhm_in=fwhm_in)
    assert _second_moment_sigma(wave, out[0]) == pytest.approx(10.0 / FWHM_PER_SIGMA, rel=2e-3)
    assert out.sum() == pytest.approx(line.sum(), rel=1e-5)
    with pytest.raises(ValueError, match="sharper"):
        degrade_to_fwhm(wave, line, fwhm_out=1.0, fwhm_in=fwhm_in)


def test_degrade_to_resolution_gives_constant_velocity_width():
    wave = log_linear_grid(4000.0, 16000, 2e-5)  # to 8360 Å
    flux = np.zeros((1, wave.size))
    centres = [4500.0, 6500.0]
    for c in centres:
        flux[0, np.argmin(np.abs(wave - c))] = 1.0
    out, _ = degrade_to_resolution(wave, flux, r_out=2000.0)
    for c in centres:
        sel = np.abs(wave - c) < 20
        sigma_kms = _second_moment_sigma(wave[sel], out[0, sel]) / c * C_KMS
        assert sigma_kms == pytest.approx(C_KMS / 2000 / FWHM_PER_SIGMA, rel=0.02)


def test_degrade_ignores_masked_pixels():
    wave = linear_grid(4000.0, 5000.0, 1.0)
    flux = np.ones((1, wave.size))
    ivar = np.ones_like(flux)
    flux[0, 500] = 1e6  # a cosmic ray, masked
    ivar[0, 500] = 0.0
    out, iv = degrade_to_fwhm(wave, flux, 5.0, ivar=ivar)
    np.testing.assert_allclose(out[0, 10:-10], 1.0, rtol=1e-5)
    assert np.all(iv[0, 10:-10] > 1.0)  # smoothing averages noise down


def _star(n: int, snr: float, seed: int = 0):
    """Known smooth continua x absorption lines on the default grid, with noise."""
    rng = np.random.default_rng(seed)
    wave = linear_grid(3900.0, 8699.0, 1.0)
    x = (wave - 6300.0) / 2400.0
    cont = 1000.0 * (1 + 0.5 * x - 0.3 * x**2)[None, :] * np.exp(rng.normal(0, 0.2, (n, 1)) * x)
    lines = np.ones((n, wave.size))
    for c in rng.uniform(3950.0, 8650.0, 60):
        depth, width = rng.uniform(0.1, 0.6), rng.uniform(1.0, 4.0)
        lines *= 1.0 - depth * np.exp(-0.5 * ((wave - c) / width) ** 2)
    sigma = cont / snr
    flux = cont * lines + rng.normal(0.0, 1.0, cont.shape) * sigma
    return wave, flux, 1.0 / sigma**2, cont, lines


@pytest.mark.parametrize("snr", [10.0, 100.0])
def test_normalise_recovers_known_continuum(snr):
    wave, flux, ivar, cont, lines = _star(64, snr)
    nflux, nivar, fitted = normalise(wave, flux, ivar)
    rel = fitted / cont - 1.0
    # Unbiased at any S/N, and tracking to a fraction of the noise per pixel.
    assert abs(np.median(rel)) < 0.1 / snr
    assert np.sqrt(np.mean(rel**2)) < 1.5 / snr
    np.testing.assert_allclose(nivar, ivar * fitted**2, rtol=1e-4)
    assert np.abs(nflux - lines).mean() < 1.0 / snr


def test_normalise_survives_gaps_and_empty_spectra():
    wave, flux, ivar, cont, _ = _star(3, 100.0)
    ivar[0, 1000:1600] = 0.0  # a 600 Å hole
    ivar[1] = 0.0  # nothing at all
    nflux, nivar, fitted = normalise(wave, flux, ivar)
    assert np.all(np.isfinite(nflux)) and np.all(np.isfinite(nivar))
    assert np.all(nivar[1] == 0) and np.all(nflux[1] == 1.0)
    assert np.all(nivar[0, 1000:1600] == 0) and np.all(nflux[0, 1000:1600] == 1.0)
    good = ivar[0] > 0
    assert np.abs(fitted[0, good] / cont[0, good] - 1).max() < 0.03


def _reference_normalise(wave, flux, ivar, s: NormaliseSettings):
    """Slow per-spectrum reference: dense basis, numpy least squares, same clipping rule."""
    basis = bspline_basis(wave.size, knot_interval_pixels(wave, s.knot_spacing))
    k = basis.shape[1]
    d2 = np.diff(np.eye(k), n=2, axis=0)
    pen = s.penalty * d2.T @ d2 + 1e-6 * np.eye(k)
    out = []
    for f_raw, iv in zip(flux, ivar, strict=True):
        good = iv > 0
        f = np.where(good, f_raw, 0.0) / f_raw[good].mean()
        w0 = good.astype(float)

        def fit(w, f=f):
            coef = np.linalg.solve(basis.T @ (w[:, None] * basis) + pen, basis.T @ (w * f))
            return basis @ coef

        active, cont = good, fit(w0)
        for _ in range(s.n_iter):
            positive = good & (cont > 0)  # a spline dipping to <= 0 is not clipped against
            rel = np.where(positive, f / np.where(positive, cont, 1.0) - 1.0, 0.0)
            rms = np.sqrt((rel[active] ** 2).mean())
            active = good & (rel > -s.clip_low * rms) & (rel < s.clip_high * rms)
            cont = fit(np.where(active, w0, 0.0))
        out.append(np.where(good, f / np.maximum(cont, s.floor), 1.0))
    return np.array(out)


def test_normalise_matches_slow_reference():
    wave, flux, ivar, _, _ = _star(4, 50.0, seed=3)
    ivar[2, 2000:2100] = 0.0
    s = NormaliseSettings(knot_spacing=150.0, n_iter=3)
    nflux, _, _ = normalise(wave, flux, ivar, s)
    np.testing.assert_allclose(nflux, _reference_normalise(wave, flux, ivar, s), atol=2e-4)


def test_normalise_in_blocks_equals_row_by_row():
    """More rows than one compiled call takes: every block's rows as when alone."""
    n = ROWS_PER_CALL + 37
    wave, flux, ivar, _, _ = _star(n, 30.0, seed=5)
    ivar[n - 1, 500:900] = 0.0
    whole = normalise(wave, flux, ivar)
    for rows in (slice(0, 2), slice(ROWS_PER_CALL - 1, ROWS_PER_CALL + 1), slice(n - 3, n)):
        alone = normalise(wave, flux[rows], ivar[rows])
        for a, b in zip(whole, alone, strict=True):
            assert a.shape == (n, wave.size)
            np.testing.assert_allclose(a[rows], b, rtol=1e-5, atol=1e-6)


def test_continuum_floor_bounds_spectra_that_vanish_in_the_blue():
    """A cool-star-like spectrum whose flux falls to ~0 below 4400 Å with a deep band just
    redward: the spline dips to nothing there, and without a floor the normalised flux
    reaches tens; the floor (2% of the mean flux) keeps it near 1."""
    wave = linear_grid(3900.0, 8699.0, 1.0)
    cont = 1000.0 / (1 + np.exp(-(wave - 4400.0) / 40.0))
    flux = (cont * (1 - 0.7 * ((wave > 4480) & (wave < 4560))) + 2.0)[None]
    ivar = np.ones_like(flux)
    unbounded, _, _ = normalise(wave, flux, ivar, NormaliseSettings(floor=0.0))
    assert unbounded.max() > 20
    s = NormaliseSettings()
    nflux, _, fitted = normalise(wave, flux, ivar, s)
    assert nflux.max() < 2.0
    assert fitted.min() >= 0.999 * s.floor * flux.mean()
    np.testing.assert_allclose(nflux, _reference_normalise(wave, flux, ivar, s), atol=2e-4)


def test_normalise_settings_are_validated():
    with pytest.raises(ValueError, match="knot_spacing"):
        NormaliseSettings(knot_spacing=0.0)
    with pytest.raises(ValueError, match="weighting"):
        NormaliseSettings(weighting="magic")
    with pytest.raises(ValueError, match="floor"):
        NormaliseSettings(floor=1.0)


def test_bspline_basis_is_partition_of_unity():
    basis = bspline_basis(1001, 50)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=1e-12)


def test_four_cpu_devices_are_visible():
    assert len(jax.devices()) == 4
