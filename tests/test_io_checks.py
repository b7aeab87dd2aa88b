"""Checks of spectra as read, over a chunk at once: the same verdicts and masks as one by one."""

import re

import numpy as np
import pytest

from sost_jax.data.io.checks import checked_rows, spectrum_from_raw
from sost_jax.data.prepare import PrepareSettings
from sost_jax.data.prepare_files import read_to_grid
from sost_jax.data.spectra import RawSpectrum, ReadError
from sost_jax.mock import MockSettings, lamost_wavelength, write_lamost_fits
from sost_jax.mock import write_mock_lamost_survey as write_survey

P = 50


def _one_by_one(flux, ivar, bad, wave):
    """Slow reference: the rules written out per spectrum and per pixel."""
    reasons, fluxes, ivars = [], [], []
    for f, iv, b in zip(flux, ivar, bad, strict=True):
        finite = [np.isfinite(x) for x in f]
        ivar_ok = [bool(np.isfinite(x) and x > 0) for x in iv]
        good = [fi and io and m == 0 for fi, io, m in zip(finite, ivar_ok, b, strict=True)]
        if not all(np.isfinite(wave)) or not all(np.diff(wave) > 0):
            reasons.append("wavelengths are not finite and strictly increasing")
        elif not any(finite):
            reasons.append("flux is NaN/inf everywhere")
        elif not any(ivar_ok):
            reasons.append("ivar is zero (or invalid) everywhere")
        elif not any(good):
            reasons.append("every pixel is masked")
        else:
            reasons.append(None)
        fluxes.append([x if fi else 0.0 for x, fi in zip(f, finite, strict=True)])
        ivars.append([x if g else 0.0 for x, g in zip(iv, good, strict=True)])
    return reasons, np.array(fluxes, np.float32), np.array(ivars, np.float32)


def _defective_rows():
    """Big-endian rows as files store them: one good, and one per kind of defect."""
    rng = np.random.default_rng(0)
    flux = rng.uniform(0.5, 2.0, (7, P)).astype(">f4")
    ivar = rng.uniform(1.0, 9.0, (7, P)).astype(">f4")
    bad = np.zeros((7, P), ">f4")
    flux[1, 3], ivar[1, 4], ivar[1, 5], bad[1, 6] = np.nan, np.inf, -1.0, 2.0  # a few pixels
    flux[2] = np.nan  # no finite flux
    ivar[3] = 0.0  # no weight
    bad[4] = 1.0  # all masked
    ivar[5, :25], bad[5, 25:] = 0.0, 4.0  # no pixel with both
    flux[6, ::2] = np.inf
    return np.linspace(4000.0, 4049.0, P).astype(">f4"), flux, ivar, bad


def test_chunk_checks_match_the_rules_pixel_by_pixel():
    wave, flux, ivar, bad = _defective_rows()
    expected, ref_flux, ref_ivar = _one_by_one(flux, ivar, bad, wave)
    w, f, iv, reasons = checked_rows(wave, flux, ivar, bad)
    assert reasons == expected
    assert expected[0] is None and expected[1] is None and expected[5] == "every pixel is masked"
    assert w.dtype == np.float64 and f.dtype == iv.dtype == np.float32
    np.testing.assert_array_equal(f, ref_flux)
    np.testing.assert_array_equal(iv, ref_ivar)
    # One by one, as `read_spectrum` reads a file: the same verdicts and arrays.
    for i, reason in enumerate(expected):
        raw = RawSpectrum(wave, flux[i], ivar[i], bad[i], {"path": f"f{i}.fits"})
        if reason is None:
            spec = spectrum_from_raw(raw)
            np.testing.assert_array_equal(spec.ivar, ref_ivar[i])
            np.testing.assert_array_equal(spec.mask, ref_ivar[i] == 0)
        else:
            with pytest.raises(ReadError, match=re.escape(f"f{i}.fits: {reason}")):
                spectrum_from_raw(raw)


def test_rows_with_own_grids_are_judged_one_by_one():
    wave, flux, ivar, bad = _defective_rows()
    waves = np.stack([wave.astype(np.float64)] * 7)
    waves[0, 10] = waves[0, 9]  # not increasing: only row 0 fails for it
    _, _, _, reasons = checked_rows(waves, flux, ivar, None)
    assert reasons[0] == "wavelengths are not finite and strictly increasing"
    assert reasons[1] is None and reasons[2] == "flux is NaN/inf everywhere"


def test_lengths_that_differ_are_refused():
    raw = RawSpectrum(np.arange(5.0), np.ones(5), np.ones(4), None, {"path": "x.fits"})
    with pytest.raises(ReadError, match="x.fits: wavelength, flux and ivar lengths differ"):
        spectrum_from_raw(raw)


def test_a_chunk_on_its_shared_grid_equals_its_files_one_at_a_time(tmp_path):
    """read_to_grid checks and resamples a chunk at once (one shared grid); file by file the
    result is the same, and a defective file fails alone with its reason."""
    write_survey(tmp_path, 6, MockSettings(), seed=5)
    wave = lamost_wavelength()
    flux = np.full(wave.size, np.nan, np.float32)
    ones = np.ones(wave.size, np.float32)
    write_lamost_fits(tmp_path / "nan.fits", wave, flux, ones, 0 * ones, 0 * ones, {"OBSID": 9})
    paths = sorted(str(p) for p in tmp_path.glob("*.fits"))
    settings = PrepareSettings(grid_start=4000.0, grid_stop=8000.0, grid_step=2.0)
    chunk = read_to_grid(paths, settings)
    assert [f[1] for f in chunk["failures"]] == [f"{tmp_path}/nan.fits: flux is NaN/inf everywhere"]
    alone = [read_to_grid([p], settings) for p in paths if not p.endswith("nan.fits")]
    assert [m["id"] for m in chunk["meta"]] == [a["meta"][0]["id"] for a in alone]
    np.testing.assert_array_equal(chunk["flux"], np.concatenate([a["flux"] for a in alone]))
    np.testing.assert_array_equal(chunk["ivar"], np.concatenate([a["ivar"] for a in alone]))
