"""LAMOST low-resolution spectra (DR1-DR10 FITS layouts) -> `Spectrum`.

Two layouts exist:

* DR5 and later: an empty primary HDU carrying the header keywords, then a binary table
  (EXTNAME COADD in DR10) with one row and array columns FLUX, IVAR, WAVELENGTH, ANDMASK,
  ORMASK, NORMALIZATION.
* DR1-DR4: a primary image of shape [5, P] whose rows are flux, ivar, wavelength,
  andmask, ormask, with the same header keywords.

The NORMALIZATION column is ignored (normalisation is a preprocessing step of ours).
LAMOST wavelengths are vacuum and heliocentric unless the header says otherwise.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.data.io import fitsfast
from sost_jax.data.io.checks import check_lengths, spectrum_from_raw
from sost_jax.data.io.fitsfast import Backend, FitsFormatError, FitsUnsupported, Hdu
from sost_jax.data.spectra import RawSpectrum, ReadError, Spectrum
from sost_jax.errors import InputError

REQUIRED_COLUMNS: tuple[str, ...] = ("FLUX", "IVAR", "WAVELENGTH")
"""Binary-table columns a DR5+ file must have; ANDMASK is used when present."""

_FITS_SUFFIXES = (".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts")
_FLOAT_KEYS = {
    "ra": "RA",
    "dec": "DEC",
    "z": "Z",
    "z_err": "Z_ERR",
    "snr_u": "SNRU",
    "snr_g": "SNRG",
    "snr_r": "SNRR",
    "snr_i": "SNRI",
    "snr_z": "SNRZ",
}
_STR_KEYS = {"class": "CLASS", "subclass": "SUBCLASS"}
HEADER_KEYS = frozenset(
    ("OBSID", "TELESCOP", "VACUUM", "HELIO", *_FLOAT_KEYS.values(), *_STR_KEYS.values())
)
"""Primary-header keywords the LAMOST reader (`lamost_meta`, format detection) reads."""


def file_stem(path: str | PathLike[str]) -> str:
    """File name without directory and FITS suffix (``.fits``, ``.fits.gz``, ...)."""
    name = Path(path).name
    for suffix in _FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def lamost_meta(header: dict[str, Any], path: str | PathLike[str]) -> dict[str, Any]:
    """The `Spectrum.meta` of a LAMOST file from its primary header.

    Parameters
    ----------
    header : dict
        Primary header, keyword -> value.
    path : str or path-like
        The file, for ``id`` (when OBSID is absent) and ``path``.

    Returns
    -------
    dict
        ``id``, ``path``, ``obsid``, ``ra``/``dec`` [deg], ``z``, ``z_err``, ``snr_u`` ...
        ``snr_z``, ``class``, ``subclass``, ``medium`` ("vacuum" unless VACUUM = F) and
        ``helio`` (True unless HELIO = F); absent keywords give None.
    """
    obsid = _as_int(header.get("OBSID"))
    meta: dict[str, Any] = {
        "id": str(obsid) if obsid is not None else file_stem(path),
        "path": str(path),
        "obsid": obsid,
    }
    for name, key in _FLOAT_KEYS.items():
        meta[name] = _as_float(header.get(key))
    for name, key in _STR_KEYS.items():
        meta[name] = _as_str(header.get(key))
    meta["medium"] = "air" if header.get("VACUUM") is False else "vacuum"
    meta["helio"] = header.get("HELIO") is not False
    return meta


def _row(column: np.ndarray) -> np.ndarray:
    """One spectrum from a table column: row 0 of a [rows, P] array, or a [P] column."""
    return column[0] if column.ndim == 2 else column


def _arrays_from_hdus(hdus: list[Hdu]) -> tuple[np.ndarray, ...]:
    """(wave, flux, ivar, andmask or None) from the decoded HDUs; ValueError if wrong."""
    header0, data0 = hdus[0]
    if header0.get("NAXIS") == 0:
        if len(hdus) < 2 or not isinstance(hdus[1].data, dict):
            raise InputError("DR5+ layout needs a binary table in HDU 1, none found")
        columns = hdus[1].data
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)} in HDU 1")
        if len(columns["FLUX"]) == 0:
            raise InputError("binary table has no rows")
        andmask = _row(columns["ANDMASK"]) if "ANDMASK" in columns else None
        return (
            _row(columns["WAVELENGTH"]),
            _row(columns["FLUX"]),
            _row(columns["IVAR"]),
            andmask,
        )
    if isinstance(data0, np.ndarray) and data0.ndim == 2 and data0.shape[0] >= 3:
        andmask = data0[3] if data0.shape[0] >= 4 else None
        return data0[2], data0[0], data0[1], andmask
    shape = None if data0 is None else getattr(data0, "shape", None)
    raise InputError(
        f"not a LAMOST layout: primary data shape {shape}, expected none (DR5+) or [5, P]"
    )


def spectrum_from_arrays(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    andmask: np.ndarray | None,
    meta: dict[str, Any],
) -> Spectrum:
    """Build a validated, masked `Spectrum` from raw LAMOST arrays.

    Parameters
    ----------
    wave, flux, ivar : array [P]
        Wavelength [Å], flux, inverse variance as stored.
    andmask : array [P] or None
        LAMOST AND mask; non-zero pixels are masked.
    meta : dict
        Metadata; ``meta["path"]`` names the file in errors.

    Returns
    -------
    Spectrum
        mask = andmask != 0 | ivar <= 0 | non-finite flux or ivar; ivar and flux set to 0
        where masked or non-finite.

    Raises
    ------
    ReadError
        Lengths differ, wavelengths not finite and increasing, or no usable pixel.
    """
    return spectrum_from_raw(RawSpectrum(wave, flux, ivar, andmask, meta))


def lamost_from_bytes(raw: bytes, path: str | PathLike[str], backend: Backend = "auto") -> Spectrum:
    """Like `read_lamost`, from file contents already in memory (decompressed)."""
    try:
        hdus = fitsfast.read_hdus(raw, 2, backend, HEADER_KEYS)
    except (FitsFormatError, FitsUnsupported, ValueError) as err:
        raise ReadError(f"{path}: {err}") from err
    return lamost_from_hdus(hdus, path)


def lamost_from_hdus(hdus: list[Hdu], path: str | PathLike[str]) -> Spectrum:
    """Like `read_lamost`, from the file's first two HDUs already decoded."""
    return spectrum_from_raw(lamost_raw_from_hdus(hdus, path))


def lamost_raw_from_hdus(hdus: list[Hdu], path: str | PathLike[str]) -> RawSpectrum:
    """The arrays of a LAMOST file as stored (views of its bytes; `sost_jax.data.io.checks`
    checks them), from its first two HDUs already decoded.

    Raises
    ------
    ReadError
        Not a LAMOST layout, missing columns, or arrays of different lengths.
    """
    try:
        arrays = _arrays_from_hdus(hdus)
    except ValueError as err:
        raise ReadError(f"{path}: {err}") from err
    raw = RawSpectrum(*arrays, lamost_meta(hdus[0].header, path))
    check_lengths(raw)
    return raw


def read_lamost(path: str | PathLike[str], backend: Backend = "auto") -> Spectrum:
    """Read one LAMOST low-resolution spectrum (DR5+ table or DR1-4 image layout).

    Parameters
    ----------
    path : str or path-like
        ``.fits`` or gzipped ``.fits.gz`` file.
    backend : {"auto", "fast", "astropy"}
        FITS decoding: the built-in fast parser with astropy fallback ("auto"), or one
        of them only. All give identical results on files both understand.

    Returns
    -------
    Spectrum
        wave float64 [P] [Å, vacuum, heliocentric], flux/ivar float32 [P], mask bool [P]
        (ANDMASK != 0, ivar <= 0 or non-finite values), meta as in `lamost_meta`.

    Raises
    ------
    ReadError
        Unreadable, truncated or non-LAMOST file, missing columns, or no usable pixel;
        the message starts with the path.
    """
    try:
        raw = fitsfast.load_bytes(path)
    except (OSError, FitsFormatError) as err:
        raise ReadError(f"{path}: {err}") from err
    return lamost_from_bytes(raw, path, backend)
