"""LAMOST reader: real DR10 files, both layouts, and every kind of bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fixtures_io import (
    LAMOST_DIR,
    NPIX,
    lamost_arrays,
    lamost_header,
    needs,
    write_lamost_dr5,
    write_lamost_dr14,
)

from sost_jax.data.io import read_lamost
from sost_jax.data.spectra import ReadError, Spectrum

LAMOST_FILES = sorted(LAMOST_DIR.glob("*.fits")) if LAMOST_DIR.is_dir() else []


def _assert_same(a: Spectrum, b: Spectrum) -> None:
    for name in ("wave", "flux", "ivar", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.meta == b.meta


@needs(LAMOST_DIR)
def test_all_real_dr10_files_read_identically_with_both_backends() -> None:
    assert len(LAMOST_FILES) == 25
    for path in LAMOST_FILES:
        fast = read_lamost(path, backend="fast")
        _assert_same(fast, read_lamost(path, backend="astropy"))
        assert fast.wave.dtype == np.float64 and fast.flux.dtype == np.float32
        assert fast.wave.shape == fast.flux.shape == fast.ivar.shape == fast.mask.shape
        npix = int(fits.getheader(path, 1)["TFORM1"].strip().rstrip("E"))
        assert fast.wave.shape == (npix,) and 3890 < npix < 3920
        assert 3690 < fast.wave[0] < 3710 and 9000 < fast.wave[-1] < 9110
        assert np.all(np.diff(fast.wave) > 0)
        assert np.all(fast.ivar[fast.mask] == 0) and np.all(fast.ivar[~fast.mask] > 0)


@needs(LAMOST_DIR)
def test_real_meta_matches_header() -> None:
    for path in LAMOST_FILES[:5]:
        spec = read_lamost(path)
        header = fits.getheader(path, 0)
        assert spec.meta["obsid"] == header["OBSID"]
        assert spec.meta["id"] == str(header["OBSID"]) == path.stem
        assert spec.meta["ra"] == header["RA"] and spec.meta["dec"] == header["DEC"]
        assert spec.meta["z"] == header["Z"] and spec.meta["z_err"] == header["Z_ERR"]
        assert spec.meta["snr_g"] == header["SNRG"]
        assert spec.meta["class"] == header["CLASS"].strip()
        assert spec.meta["medium"] == "vacuum" and spec.meta["helio"] is True
        assert spec.meta["path"] == str(path)


def test_dr5_layout_masks_andmask_and_zero_ivar(tmp_path: Path) -> None:
    spec = read_lamost(write_lamost_dr5(tmp_path / "a.fits"))
    arrays = lamost_arrays()
    assert spec.wave.shape == (NPIX,)
    assert np.array_equal(spec.flux, arrays["FLUX"])
    assert np.array_equal(spec.wave, arrays["WAVELENGTH"].astype(np.float64))
    assert spec.mask[5] and spec.mask[7] and spec.mask.sum() == 2
    assert spec.ivar[5] == 0 and spec.ivar[7] == 0 and spec.ivar[0] == 0.5
    assert spec.meta["id"] == "123456" and spec.meta["obsid"] == 123456
    assert spec.meta["snr_r"] == 30.0 and spec.meta["subclass"] == "G2"


def test_dr14_layout_equals_dr5_layout(tmp_path: Path) -> None:
    new = read_lamost(write_lamost_dr5(tmp_path / "new.fits"))
    old = read_lamost(write_lamost_dr14(tmp_path / "old.fits"))
    for name in ("wave", "flux", "ivar", "mask"):
        assert np.array_equal(getattr(new, name), getattr(old, name)), name
    assert old.meta["obsid"] == 123456


def test_nan_flux_is_masked_and_zeroed(tmp_path: Path) -> None:
    arrays = lamost_arrays()
    arrays["FLUX"][10:12] = np.nan
    arrays["IVAR"][20] = np.inf
    spec = read_lamost(write_lamost_dr5(tmp_path / "nan.fits", arrays))
    assert spec.mask[10] and spec.mask[11] and spec.mask[20]
    assert spec.flux[10] == 0 and spec.ivar[20] == 0
    assert np.all(np.isfinite(spec.flux)) and np.all(np.isfinite(spec.ivar))


def test_without_obsid_and_air_header(tmp_path: Path) -> None:
    header = lamost_header(obsid=None)
    header["VACUUM"] = False
    spec = read_lamost(write_lamost_dr5(tmp_path / "spec-x.fits", header=header))
    assert spec.meta["id"] == "spec-x" and spec.meta["obsid"] is None
    assert spec.meta["medium"] == "air"


def test_gzipped_file(tmp_path: Path) -> None:
    plain = write_lamost_dr5(tmp_path / "g.fits")
    packed = tmp_path / "g.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    from_gz, from_plain = read_lamost(packed), read_lamost(plain)
    assert np.array_equal(from_gz.flux, from_plain.flux)
    assert from_gz.meta["id"] == from_plain.meta["id"] == "123456"


def _expect_error(path: Path, match: str | None) -> None:
    for backend in ("auto", "astropy"):
        with pytest.raises(ReadError, match=match) as info:
            read_lamost(path, backend=backend)
        assert str(path) in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = write_lamost_dr5(tmp_path / "t.fits")
    path.write_bytes(path.read_bytes()[:-3000])
    with pytest.raises(ReadError, match="truncated") as info:
        read_lamost(path)
    assert str(path) in str(info.value)
    _expect_error(path, None)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.fits"
    path.write_bytes(np.random.default_rng(2).bytes(8000))
    _expect_error(path, "FITS|SIMPLE")


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "absent.fits", "No such file")


def test_missing_column(tmp_path: Path) -> None:
    arrays = lamost_arrays()
    del arrays["IVAR"]
    _expect_error(write_lamost_dr5(tmp_path / "m.fits", arrays), "missing column.*IVAR")


def test_all_nan_flux(tmp_path: Path) -> None:
    arrays = lamost_arrays()
    arrays["FLUX"][:] = np.nan
    _expect_error(write_lamost_dr5(tmp_path / "n.fits", arrays), "flux is NaN")


def test_all_zero_ivar(tmp_path: Path) -> None:
    arrays = lamost_arrays()
    arrays["IVAR"][:] = 0
    _expect_error(write_lamost_dr5(tmp_path / "z.fits", arrays), "ivar is zero")


def test_wrong_layout(tmp_path: Path) -> None:
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.ones(50, dtype=np.float32), header=lamost_header()).writeto(path)
    _expect_error(path, "not a LAMOST layout")


def test_decreasing_wavelength_is_refused(tmp_path: Path) -> None:
    arrays = lamost_arrays()
    arrays["WAVELENGTH"] = arrays["WAVELENGTH"][::-1].copy()
    _expect_error(write_lamost_dr5(tmp_path / "w.fits", arrays), "increasing")
