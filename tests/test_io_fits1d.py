"""Generic 1-D FITS reader: WCS variants, masks, ivar sources, medium and ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fixtures_io import MILES_DIR, needs, write_image

from sost_jax.data.io import read_fits1d
from sost_jax.data.spectra import ReadError

MILES_FILE = MILES_DIR / "MILES_res2.50_star_m0001V.fits"


@needs(MILES_DIR)
def test_miles_file() -> None:
    spec = read_fits1d(MILES_FILE)
    assert spec.wave.shape == (4300,)
    assert np.allclose(spec.wave, 3540.5 + 0.9 * np.arange(4300), rtol=0, atol=1e-9)
    assert spec.flux.dtype == np.float32 and spec.ivar.dtype == np.float32
    assert spec.meta["id"] == "m0001" and spec.meta["miles_id"] == 1
    assert spec.meta["ivar_known"] is False and spec.meta["medium"] is None
    assert np.all(spec.ivar[~spec.mask] == 1)
    assert np.array_equal(spec.flux, fits.getdata(MILES_FILE).astype(np.float32))


@needs(MILES_DIR)
def test_miles_backends_agree_and_medium_argument() -> None:
    paths = sorted(MILES_DIR.glob("MILES_*.fits"))[:20]
    for path in paths:
        a = read_fits1d(path, medium="air", backend="fast")
        b = read_fits1d(path, medium="air", backend="astropy")
        assert np.array_equal(a.wave, b.wave) and np.array_equal(a.flux, b.flux)
        assert np.array_equal(a.mask, b.mask) and a.meta == b.meta
        assert a.meta["medium"] == "air"


def test_linear_wcs_with_crpix(tmp_path: Path) -> None:
    cards = {"CRVAL1": 5000.0, "CDELT1": 2.0, "CRPIX1": 11.0}
    spec = read_fits1d(write_image(tmp_path / "lin.fits", np.ones(50), cards))
    assert spec.wave[10] == 5000.0 and spec.wave[0] == 4980.0
    assert spec.meta["id"] == "lin" and "miles_id" not in spec.meta


def test_iraf_card_astropy_refuses_is_kept_as_text(tmp_path: Path) -> None:
    """IRAF multispec writes cards like ``APNUM1  =                  1 0`` (numbers, unquoted)
    that astropy refuses to parse; the file's data and WCS must still be read."""
    flux = 1.0 + 0.1 * np.sin(np.arange(200) / 7.0)
    cards = {"CRVAL1": 5000.0, "CDELT1": 2.0, "CRPIX1": 1.0, "APNUM1": "placeholder"}
    path = write_image(tmp_path / "iraf.fits", flux, cards)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"APNUM1  =")
    raw[at : at + 80] = b"APNUM1  =                  1 0".ljust(80)
    path.write_bytes(bytes(raw))
    with pytest.raises(fits.VerifyError), fits.open(path) as hdul:
        hdul[0].header["APNUM1"]  # what skipped such files before
    spec = read_fits1d(path)
    assert np.allclose(spec.wave, 5000.0 + 2.0 * np.arange(200))
    assert np.allclose(spec.flux, flux)


def test_cd1_1_replaces_cdelt1(tmp_path: Path) -> None:
    cards = {"CRVAL1": 4000.0, "CD1_1": 0.5}
    spec = read_fits1d(write_image(tmp_path / "cd.fits", np.ones(10), cards))
    assert np.allclose(spec.wave, 4000.0 + 0.5 * np.arange(10))


def test_log_linear_dc_flag(tmp_path: Path) -> None:
    cards = {"CRVAL1": 3.6, "CDELT1": 1e-4, "CRPIX1": 1, "DC-FLAG": 1}
    spec = read_fits1d(write_image(tmp_path / "log.fits", np.ones(100), cards))
    assert np.allclose(spec.wave, 10 ** (3.6 + 1e-4 * np.arange(100)), rtol=1e-12)


def test_wave_log_ctype_and_units(tmp_path: Path) -> None:
    cards = {"CTYPE1": "AWAV-LOG", "CRVAL1": 500.0, "CDELT1": 0.01, "CUNIT1": "nm"}
    spec = read_fits1d(write_image(tmp_path / "wl.fits", np.ones(20), cards))
    expected = 10 * 500.0 * np.exp(0.01 * np.arange(20) / 500.0)
    assert np.allclose(spec.wave, expected, rtol=1e-12)
    assert spec.meta["medium"] == "air"


def test_decreasing_axis_is_flipped(tmp_path: Path) -> None:
    flux = np.arange(1.0, 11.0)
    cards = {"CRVAL1": 6000.0, "CDELT1": -1.0}
    spec = read_fits1d(write_image(tmp_path / "rev.fits", flux, cards))
    assert np.all(np.diff(spec.wave) > 0)
    assert spec.flux[0] == 10.0 and spec.wave[0] == 5991.0


def test_zero_gaps_and_nan_are_masked(tmp_path: Path) -> None:
    flux = np.ones(30)
    flux[:4] = 0.0
    flux[15:18] = 0.0
    flux[25] = np.nan
    cards = {"CRVAL1": 4000.0, "CDELT1": 1.0}
    path = write_image(tmp_path / "gap.fits", flux, cards)
    spec = read_fits1d(path)
    expected = np.zeros(30, dtype=bool)
    expected[[0, 1, 2, 3, 15, 16, 17, 25]] = True
    assert np.array_equal(spec.mask, expected)
    assert np.all(spec.ivar[expected] == 0) and np.all(spec.ivar[~expected] == 1)
    assert np.all(np.isfinite(spec.flux))
    assert read_fits1d(path, mask_zeros=False).mask.sum() == 1


@pytest.mark.parametrize(
    ("keyword", "value", "medium"),
    [("AIRORVAC", "air", "air"), ("AIRORVAC", "vac", "vacuum"), ("VACUUM", True, "vacuum")],
)
def test_header_medium_wins_over_argument(
    tmp_path: Path, keyword: str, value: object, medium: str
) -> None:
    cards = {"CRVAL1": 4000.0, "CDELT1": 1.0, keyword: value}
    path = write_image(tmp_path / "m.fits", np.ones(5), cards)
    other = "air" if medium == "vacuum" else "vacuum"
    assert read_fits1d(path, medium=other).meta["medium"] == medium


def test_error_extension_gives_ivar(tmp_path: Path) -> None:
    flux = np.full(20, 5.0)
    err = np.full(20, 0.5)
    err[3] = 0.0
    primary = fits.PrimaryHDU(flux)
    primary.header.update(CRVAL1=4000.0, CDELT1=1.0)
    path = tmp_path / "err.fits"
    fits.HDUList([primary, fits.ImageHDU(err, name="ERROR")]).writeto(path)
    spec = read_fits1d(path)
    assert spec.meta["ivar_known"] is True
    assert spec.ivar[0] == pytest.approx(4.0) and spec.ivar[3] == 0 and spec.mask[3]


def test_bandid_variance_row_gives_ivar(tmp_path: Path) -> None:
    data = np.stack([np.full(10, 2.0), np.full(10, 0.25)])
    cards = {"CRVAL1": 4000.0, "CDELT1": 1.0, "BANDID1": "spectrum", "BANDID2": "variance"}
    spec = read_fits1d(write_image(tmp_path / "var.fits", data, cards))
    assert spec.meta["ivar_known"] is True and np.allclose(spec.ivar, 4.0)
    assert np.all(spec.flux == 2.0)


def test_no_wavelength_solution(tmp_path: Path) -> None:
    path = write_image(tmp_path / "nowcs.fits", np.ones(10))
    with pytest.raises(ReadError, match="nowcs.fits.*no wavelength solution"):
        read_fits1d(path)


def test_all_nan_is_refused(tmp_path: Path) -> None:
    path = write_image(tmp_path / "nan.fits", np.full(10, np.nan), {"CRVAL1": 1.0, "CDELT1": 1.0})
    with pytest.raises(ReadError, match="nan.fits.*no usable pixel"):
        read_fits1d(path)


def test_table_hdu_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tab.fits"
    col = fits.Column(name="X", format="E", array=np.ones(3))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
    with pytest.raises(ReadError, match="no image data"):
        read_fits1d(path, hdu=1)
