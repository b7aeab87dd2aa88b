"""One-dimensional FITS spectra with a WCS wavelength axis (MILES, ELODIE, ...) -> `Spectrum`.

The wavelength of pixel ``i`` (0-based) follows from the header:

* linear: ``CRVAL1 + CDELT1 * (i + 1 - CRPIX1)`` (CD1_1 replaces CDELT1, CRPIX1 defaults to 1);
* log10-linear when ``DC-FLAG = 1`` (IRAF/LAMOST): ``10 ** (linear value)``;
* ``CTYPE1 = 'WAVE-LOG'`` / ``'AWAV-LOG'`` (FITS WCS paper III):
  ``CRVAL1 * exp(CDELT1 * (i + 1 - CRPIX1) / CRVAL1)``;
* SDSS-style ``COEFF0``/``COEFF1`` (log10) when CRVAL1 is absent.

CUNIT1 may say m, nm, um or Angstrom; without it the axis is taken to be in Å.
"""

from __future__ import annotations

import re
from os import PathLike
from typing import Any

import numpy as np

from sost_jax.data.io import fitsfast
from sost_jax.data.io.fitsfast import Backend, FitsFormatError, FitsUnsupported
from sost_jax.data.io.lamost import file_stem
from sost_jax.data.spectra import ReadError, Spectrum
from sost_jax.errors import InputError

_UNIT_TO_ANGSTROM = {
    "angstrom": 1.0,
    "angstroms": 1.0,
    "a": 1.0,
    "aa": 1.0,
    "nm": 10.0,
    "um": 1.0e4,
    "micron": 1.0e4,
    "m": 1.0e10,
}
_ERROR_WORDS = ("sigma", "error", "err", "noise", "uncertainty")
_VARIANCE_WORDS = ("variance", "var")
_IVAR_WORDS = ("ivar", "invvar", "inverse variance", "weight")
_MILES_RE = re.compile(r"(?:^|_)m(\d{4})V?$", re.IGNORECASE)


def _number(header: dict[str, Any], key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def wcs_wavelength(header: dict[str, Any], npix: int) -> np.ndarray:
    """Wavelength of each pixel [Å] from a 1-D spectral WCS header.

    Parameters
    ----------
    header : dict
        Keyword -> value.
    npix : int
        Number of pixels P.

    Returns
    -------
    float64 [P]
        Wavelength [Å], in the file's pixel order.

    Raises
    ------
    ValueError
        No usable wavelength solution, or an unknown CUNIT1.
    """
    pix = np.arange(1, npix + 1, dtype=np.float64)
    ctype = str(header.get("CTYPE1") or "").strip().upper()
    crval = _number(header, "CRVAL1")
    if crval is None:
        coeff0, coeff1 = _number(header, "COEFF0"), _number(header, "COEFF1")
        if coeff0 is None or coeff1 is None:
            raise InputError("no wavelength solution (CRVAL1 and COEFF0/COEFF1 absent)")
        return 10.0 ** (coeff0 + coeff1 * (pix - 1))
    step = _number(header, "CD1_1")
    if step is None:
        step = _number(header, "CDELT1")
    if step is None or step == 0:
        raise InputError("no wavelength step (CDELT1 / CD1_1 absent or zero)")
    crpix = _number(header, "CRPIX1")
    crpix = 1.0 if crpix is None else crpix
    offset = step * (pix - crpix)
    if ctype.endswith("-LOG"):
        wave = crval * np.exp(offset / crval)
    elif _number(header, "DC-FLAG") == 1:
        wave = 10.0 ** (crval + offset)
    else:
        wave = crval + offset
    unit = str(header.get("CUNIT1") or "angstrom").strip().lower()
    if unit not in _UNIT_TO_ANGSTROM:
        raise InputError(f"unknown wavelength unit CUNIT1={unit!r}")
    return wave * _UNIT_TO_ANGSTROM[unit]


def header_medium(header: dict[str, Any]) -> str | None:
    """ "air", "vacuum" or None from AIRORVAC, VACUUM or CTYPE1 (AWAV/WAVE)."""
    airorvac = header.get("AIRORVAC")
    if isinstance(airorvac, str):
        word = airorvac.strip().lower()
        if word.startswith("air"):
            return "air"
        if word.startswith("vac"):
            return "vacuum"
    vacuum = header.get("VACUUM")
    if isinstance(vacuum, bool):
        return "vacuum" if vacuum else "air"
    ctype = str(header.get("CTYPE1") or "").strip().upper()
    if ctype == "AWAV" or ctype.startswith("AWAV-"):
        return "air"
    if ctype == "WAVE" or ctype.startswith("WAVE-"):
        return "vacuum"
    return None


def _kind(label: Any) -> str | None:
    """ "error", "variance", "ivar" or None from a band/extension label."""
    if not isinstance(label, str):
        return None
    word = label.strip().lower()
    if any(w in word for w in _IVAR_WORDS):
        return "ivar"
    if any(word == w or word.startswith(w) for w in _VARIANCE_WORDS):
        return "variance"
    if any(w in word for w in _ERROR_WORDS):
        return "error"
    return None


def _to_ivar(values: np.ndarray, kind: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "error":
            ivar = 1.0 / values**2
        elif kind == "variance":
            ivar = 1.0 / values
        else:
            ivar = values
    return np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0).astype(np.float32)


def _find_uncertainty(
    hdus: list[fitsfast.Hdu], hdu: int, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Flux [P] and ivar [P] (or None) from the data array, its BANDIDn rows or next HDU."""
    header = hdus[hdu].header
    if data.ndim == 2:
        flux = data[0]
        for row in range(1, data.shape[0]):
            kind = _kind(header.get(f"BANDID{row + 1}"))
            if kind is not None:
                return flux, _to_ivar(data[row], kind)
        return flux, None
    flux = data
    if len(hdus) > hdu + 1:
        nxt = hdus[hdu + 1]
        kind = _kind(nxt.header.get("EXTNAME"))
        if kind is not None and isinstance(nxt.data, np.ndarray):
            err = np.squeeze(nxt.data)
            if err.shape == flux.shape:
                return flux, _to_ivar(err, kind)
    return flux, None


def miles_id(stem: str) -> int | None:
    """The MILES star number from a name like ``MILES_res2.50_star_m0001V``, else None."""
    match = _MILES_RE.search(stem)
    return int(match.group(1)) if match else None


def fits1d_from_bytes(
    raw: bytes,
    path: str | PathLike[str],
    hdu: int = 0,
    medium: str | None = None,
    mask_zeros: bool = True,
    backend: Backend = "auto",
) -> Spectrum:
    """Like `read_fits1d`, from file contents already in memory (decompressed)."""
    if medium not in (None, "air", "vacuum"):
        raise InputError(f"medium must be 'air', 'vacuum' or None, not {medium!r}")
    try:
        hdus = fitsfast.read_hdus(raw, hdu + 2, backend)
        if len(hdus) <= hdu:
            raise InputError(f"HDU {hdu} absent (file has {len(hdus)})")
        header, data = hdus[hdu]
        if not isinstance(data, np.ndarray):
            raise InputError(f"HDU {hdu} holds no image data")
        data = np.squeeze(data)
        if data.ndim not in (1, 2) or data.shape[-1] < 2:
            raise InputError(f"expected a 1-D spectrum (or rows of one), got shape {data.shape}")
        flux, ivar = _find_uncertainty(hdus, hdu, data)
        wave = wcs_wavelength(header, len(flux))
    except (FitsFormatError, FitsUnsupported, ValueError) as err:
        raise ReadError(f"{path}: {err}") from err

    flux = np.asarray(flux, dtype=np.float32)
    ivar_known = ivar is not None
    good = np.isfinite(flux)
    if mask_zeros:
        good &= flux != 0
    if ivar_known:
        good &= ivar > 0
    if not good.any():
        raise ReadError(f"{path}: no usable pixel (flux NaN/zero or ivar 0 everywhere)")
    if not np.all(np.isfinite(wave)) or np.any(np.diff(wave) == 0):
        raise ReadError(f"{path}: wavelength solution gives non-finite or repeated values")
    ivar = np.where(good, ivar if ivar_known else np.float32(1), np.float32(0)).astype(np.float32)
    flux = np.where(np.isfinite(flux), flux, np.float32(0))
    if wave[-1] < wave[0]:
        wave, flux, ivar, good = wave[::-1], flux[::-1], ivar[::-1], good[::-1]

    stem = file_stem(path)
    number = miles_id(stem)
    meta: dict[str, Any] = {
        "id": f"m{number:04d}" if number is not None else stem,
        "path": str(path),
        "medium": header_medium(header) or medium,
        "ivar_known": ivar_known,
    }
    if number is not None:
        meta["miles_id"] = number
    for key, name in (("OBJECT", "object"), ("TPLLIB", "library")):
        if isinstance(header.get(key), str):
            meta[name] = header[key].strip()
    if _number(header, "FWHM") is not None:
        meta["fwhm"] = _number(header, "FWHM")
    return Spectrum(np.ascontiguousarray(wave), flux, ivar, ~good, meta)


def read_fits1d(
    path: str | PathLike[str],
    hdu: int = 0,
    medium: str | None = None,
    mask_zeros: bool = True,
    backend: Backend = "auto",
) -> Spectrum:
    """Read a 1-D FITS spectrum whose wavelengths follow a linear or log-linear WCS.

    Parameters
    ----------
    path : str or path-like
        ``.fits`` or ``.fits.gz`` file.
    hdu : int
        HDU holding the flux (0 = primary).
    medium : {"air", "vacuum", None}
        Used when the header says nothing (AIRORVAC, VACUUM, CTYPE1 AWAV/WAVE).
    mask_zeros : bool
        Mask pixels whose flux is exactly 0 (libraries pad missing ranges with zeros).
    backend : {"auto", "fast", "astropy"}
        FITS decoding, as in `sost_jax.data.io.fitsfast.read_hdus`.

    Returns
    -------
    Spectrum
        wave float64 [P] [Å], increasing; flux, ivar float32 [P]; mask bool [P] (NaN,
        zero-padded or ivar 0). ivar comes from an error/variance row (BANDIDn) or the next
        HDU (EXTNAME ERR/SIGMA/VAR/IVAR ...) when present (``meta["ivar_known"]`` True);
        otherwise it is 1 on valid pixels (``meta["ivar_known"]`` False). ``meta["id"]`` is
        the file stem, or ``"mNNNN"`` for MILES files (with ``meta["miles_id"]`` = NNNN).

    Raises
    ------
    ReadError
        Unreadable file, no image data, no wavelength solution or no usable pixel; the
        message starts with the path.
    """
    try:
        raw = fitsfast.load_bytes(path)
    except (OSError, FitsFormatError) as err:
        raise ReadError(f"{path}: {err}") from err
    return fits1d_from_bytes(raw, path, hdu, medium, mask_zeros, backend)
