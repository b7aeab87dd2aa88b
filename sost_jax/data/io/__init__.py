"""Readers: survey and library spectra, synthetic grids and catalogues -> plain arrays.

Spectra come back as `sost_jax.data.spectra.Spectrum`, grids as `sost_jax.data.spectra.Grid`,
catalogues as ``dict[str, ndarray]``. Every failure to read a file is a
`sost_jax.data.spectra.ReadError` whose message starts with the file's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any, Literal

from sost_jax.data.io import fitsfast
from sost_jax.data.io.checks import spectrum_from_raw
from sost_jax.data.io.fits1d import fits1d_from_bytes, read_fits1d
from sost_jax.data.io.fitsfast import Backend, FitsFormatError, FitsUnsupported
from sost_jax.data.io.grids import (
    read_array_grid,
    read_ascii_grid,
    read_ascii_grid_index,
    read_ck04,
    write_array_grid,
)
from sost_jax.data.io.lamost import HEADER_KEYS, lamost_raw_from_hdus, read_lamost
from sost_jax.data.io.references import (
    DEFAULT_ALIASES,
    labels_by_id,
    read_miles_params,
    read_reference_catalog,
)
from sost_jax.data.spectra import RawSpectrum, ReadError, Spectrum
from sost_jax.errors import InputError

__all__ = [
    "DEFAULT_ALIASES",
    "ReadError",
    "detect_format",
    "labels_by_id",
    "read_array_grid",
    "read_ascii_grid",
    "read_ascii_grid_index",
    "read_reference_catalog",
    "read_ck04",
    "read_fits1d",
    "read_lamost",
    "read_many",
    "read_miles_params",
    "read_raw",
    "read_spectrum",
    "write_array_grid",
]

SpectrumFormat = Literal["auto", "lamost", "fits1d"]


def detect_format(header: dict[str, Any]) -> Literal["lamost", "fits1d"]:
    """Guess the layout of a FITS spectrum from its primary header.

    Parameters
    ----------
    header : dict
        Primary header, keyword -> value.

    Returns
    -------
    {"lamost", "fits1d"}
        "lamost" when the header is LAMOST's (TELESCOP = 'LAMOST' or an OBSID keyword)
        and the primary HDU is empty with extensions (DR5+ table layout) or an [N >= 3, P]
        image (DR1-4); "fits1d" otherwise.
    """
    telescope = str(header.get("TELESCOP") or "").strip().upper()
    if telescope != "LAMOST" and "OBSID" not in header:
        return "fits1d"
    naxis = header.get("NAXIS")
    if naxis == 0 and header.get("EXTEND") is True:
        return "lamost"
    if naxis == 2 and isinstance(header.get("NAXIS2"), int) and header["NAXIS2"] >= 3:
        return "lamost"
    return "fits1d"


def read_spectrum(
    path: str | PathLike[str],
    fmt: SpectrumFormat = "auto",
    backend: Backend = "auto",
    **kwargs: Any,
) -> Spectrum:
    """Read one spectrum, choosing the reader from the file's layout.

    Parameters
    ----------
    path : str or path-like
        ``.fits`` or ``.fits.gz`` file.
    fmt : {"auto", "lamost", "fits1d"}
        Reader to use; "auto" decides with `detect_format` from the primary header.
    backend : {"auto", "fast", "astropy"}
        FITS decoding, as in `sost_jax.data.io.fitsfast.read_hdus`.
    **kwargs
        Passed to the 1-D reader (``hdu``, ``medium``, ``mask_zeros``).

    Returns
    -------
    Spectrum

    Raises
    ------
    ReadError
        The file cannot be read by the chosen reader.
    """
    out = _read(path, fmt, backend, kwargs)
    return spectrum_from_raw(out) if isinstance(out, RawSpectrum) else out


def read_raw(
    path: str | PathLike[str],
    fmt: SpectrumFormat = "auto",
    backend: Backend = "auto",
    **kwargs: Any,
) -> RawSpectrum:
    """Like `read_spectrum`, without the checks of `sost_jax.data.io.checks` where the format
    allows (LAMOST: its arrays as stored), so that a chunk of files is checked at once.

    Raises
    ------
    ReadError
        The file cannot be read by the chosen reader.
    """
    out = _read(path, fmt, backend, kwargs)
    return out if isinstance(out, RawSpectrum) else RawSpectrum(*out)


def _read(
    path: str | PathLike[str], fmt: SpectrumFormat, backend: Backend, kwargs: dict[str, Any]
) -> Spectrum | RawSpectrum:
    """A LAMOST file's `RawSpectrum`, or another file's `Spectrum`."""
    if fmt not in ("auto", "lamost", "fits1d"):
        raise InputError(f"unknown format {fmt!r}")
    try:
        raw = fitsfast.load_bytes(path)
        if fmt in ("auto", "lamost"):
            hdus = fitsfast.read_hdus(raw, 2, backend, HEADER_KEYS)
            if fmt == "lamost" or detect_format(hdus[0].header) == "lamost":
                return lamost_raw_from_hdus(hdus, path)
    except (OSError, FitsFormatError, FitsUnsupported) as err:
        raise ReadError(f"{path}: {err}") from err
    return fits1d_from_bytes(raw, path, backend=backend, **kwargs)


def read_many(
    paths: Iterable[str | PathLike[str]],
    reader: Callable[[str | PathLike[str]], Spectrum] = read_spectrum,
) -> tuple[list[Spectrum], list[tuple[str, str]]]:
    """Read many files, collecting failures instead of raising.

    Parameters
    ----------
    paths : iterable of str or path-like
        Files to read, in order.
    reader : callable
        ``reader(path) -> Spectrum``; `read_spectrum` by default.

    Returns
    -------
    spectra : list of Spectrum
        The files that were read, in input order.
    failures : list of (str, str)
        ``(path, reason)`` for every file that was not.
    """
    spectra: list[Spectrum] = []
    failures: list[tuple[str, str]] = []
    for path in paths:
        try:
            spectra.append(reader(path))
        except ReadError as err:
            failures.append((str(path), str(err)))
        except Exception as err:  # a reader bug must not stop a million-file run
            failures.append((str(path), f"{type(err).__name__}: {err}"))
    return spectra, failures
