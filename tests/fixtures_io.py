"""Small FITS writers and data locations shared by the ``test_io_*`` modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Real test data (``../shared/data``); tests that need it skip when it is absent."""

LAMOST_DIR = DATA / "lamost_dr10"
MILES_DIR = DATA / "miles"
CK04_DIR = DATA / "ck04"

NPIX = 300
"""Pixels of the synthetic LAMOST-like spectra."""


def needs(folder: Path) -> pytest.MarkDecorator:
    """Skip marker for tests that read a folder of ``../shared/data``."""
    return pytest.mark.skipif(not folder.is_dir(), reason=f"{folder} absent")


def lamost_header(obsid: int | None = 123456) -> fits.Header:
    """A primary header with the keywords the LAMOST reader uses."""
    header = fits.Header()
    if obsid is not None:
        header["OBSID"] = obsid
    header["TELESCOP"] = "LAMOST"
    header["RA"] = 10.5
    header["DEC"] = -3.25
    header["Z"] = 1.5e-4
    header["Z_ERR"] = 2.0e-5
    for band, snr in zip("UGRIZ", (1.0, 20.0, 30.0, 40.0, 35.0), strict=True):
        header[f"SNR{band}"] = snr
    header["CLASS"] = "STAR"
    header["SUBCLASS"] = "G2"
    header["HELIO"] = True
    header["VACUUM"] = True
    return header


def lamost_arrays(npix: int = NPIX) -> dict[str, np.ndarray]:
    """FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK, NORMALIZATION of a fake spectrum [npix]."""
    rng = np.random.default_rng(0)
    wave = 10 ** (3.5682 + 1e-4 * np.arange(npix))
    flux = (100 + rng.normal(0, 1, npix)).astype(np.float32)
    ivar = np.full(npix, 0.5, dtype=np.float32)
    andmask = np.zeros(npix, dtype=np.float32)
    andmask[5] = 4.0
    ivar[7] = 0.0
    return {
        "FLUX": flux,
        "IVAR": ivar,
        "WAVELENGTH": wave.astype(np.float32),
        "ANDMASK": andmask,
        "ORMASK": andmask.copy(),
        "NORMALIZATION": np.ones(npix, dtype=np.float32),
    }


def write_lamost_dr5(
    path: Path,
    arrays: dict[str, np.ndarray] | None = None,
    header: fits.Header | None = None,
) -> Path:
    """Write a DR5+ layout file: empty primary + one-row COADD table of array columns."""
    arrays = lamost_arrays() if arrays is None else arrays
    cols = [
        fits.Column(name=name, format=f"{len(a)}E", array=a[None, :]) for name, a in arrays.items()
    ]
    table = fits.BinTableHDU.from_columns(cols, name="COADD")
    primary = fits.PrimaryHDU(header=lamost_header() if header is None else header)
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


def write_lamost_dr14(path: Path, arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write a DR1-4 layout file: primary float32 image [5, P] (flux ivar wave and or)."""
    arrays = lamost_arrays() if arrays is None else arrays
    rows = ["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"]
    image = np.stack([arrays[r] for r in rows]).astype(np.float32)
    fits.PrimaryHDU(image, header=lamost_header()).writeto(path, overwrite=True)
    return path


def write_image(path: Path, data: np.ndarray, cards: dict[str, object] | None = None) -> Path:
    """Write a primary image with the given extra header cards."""
    header = fits.Header()
    for key, value in (cards or {}).items():
        header[key] = value
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path
