"""A small, fast FITS reader for the simple files surveys ship by the million.

Only what spectra need: header cards (numbers, logicals, strings), primary/IMAGE arrays
without scaling, and BINTABLE columns of fixed-size numeric or character fields. Anything
else raises `FitsUnsupported`, and the caller falls back to ``astropy.io.fits`` through the
same interface (``backend="auto"``). Structural damage (not FITS, no END card, truncated
data) raises `FitsFormatError` and is not retried.

Header dictionaries keep the first occurrence of each keyword and skip commentary cards
(COMMENT, HISTORY, blank keywords) and HIERARCH cards. The cards are parsed in
`sost_jax.data.io.fits_cards`, the HDUs located and decoded in `sost_jax.data.io.fits_hdus`;
this module reads them whole, with the fallback to astropy.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from os import PathLike
from typing import Any, Literal, NamedTuple

import numpy as np

from sost_jax.data.io.fits_cards import SKIP_KEYS, FitsFormatError, FitsUnsupported
from sost_jax.data.io.fits_hdus import check_structure, decode, scan
from sost_jax.errors import InputError

__all__ = [
    "Backend",
    "FitsFormatError",
    "FitsUnsupported",
    "Hdu",
    "load_bytes",
    "read_hdus",
    "read_header_and_data",
]

Backend = Literal["auto", "fast", "astropy"]


class Hdu(NamedTuple):
    """One decoded HDU.

    Attributes
    ----------
    header : dict
        Keyword -> value, as in `sost_jax.data.io.fits_hdus.HduInfo`.
    data : None, ndarray or dict
        None when the HDU has no data; an array shaped ``(NAXISn, ..., NAXIS1)`` for
        images; for binary tables a dict column name -> array of shape ``[rows]`` (repeat
        count 1) or ``[rows, repeat]``, in the file's (big-endian) byte order.
    """

    header: dict[str, Any]
    data: Any


def load_bytes(path: str | PathLike[str]) -> bytes:
    """Read a whole file, gunzipping it transparently when it starts with the gzip magic.

    Parameters
    ----------
    path : str or path-like
        File to read (``.fits`` or ``.fits.gz``).

    Returns
    -------
    bytes
        The (decompressed) file contents.

    Raises
    ------
    OSError
        The file cannot be opened.
    FitsFormatError
        The gzip stream is corrupt or truncated.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise FitsFormatError(f"corrupt gzip stream ({err})") from err
    return raw


def _read_hdus_fast(
    raw: bytes, max_hdus: int | None, primary_keys: frozenset[str] | None = None
) -> list[Hdu]:
    return [Hdu(info.header, decode(raw, info)) for info in scan(raw, max_hdus, primary_keys)]


def _astropy_header(header: Any) -> dict[str, Any]:
    """Keyword -> value of an astropy header. A card astropy refuses as unparsable (IRAF's
    multispec ``APNUM1  =                  1 0``: several numbers unquoted) keeps its value
    field as text, so that such a file's data and WCS are still read."""
    from astropy.io.fits.card import Undefined
    from astropy.io.fits.verify import VerifyError

    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if key in SKIP_KEYS or key in out:
            continue
        try:
            value = card.value
        except VerifyError:
            value = card.image[10:].partition("/")[0].strip()
        out[key] = None if isinstance(value, Undefined) else value
    return out


def _read_hdus_astropy(raw: bytes, max_hdus: int | None) -> list[Hdu]:
    from astropy.io import fits

    out: list[Hdu] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=True) as hdul:
                for i, hdu in enumerate(hdul):
                    if max_hdus is not None and i >= max_hdus:
                        break
                    header = _astropy_header(hdu.header)
                    if isinstance(hdu, fits.BinTableHDU):
                        table = hdu.data
                        data: Any = (
                            {}
                            if table is None
                            else {name: np.asarray(table[name]) for name in table.names}
                        )
                    else:
                        data = None if hdu.data is None else np.asarray(hdu.data)
                    out.append(Hdu(header, data))
    except Exception as err:  # astropy raises many types for damaged files
        raise FitsFormatError(f"astropy cannot read it ({type(err).__name__}: {err})") from err
    for w in caught:
        if "truncat" in str(w.message).lower():
            raise FitsFormatError(f"truncated ({w.message})")
    if not out:
        raise FitsFormatError("no HDU found")
    return out


def read_hdus(
    raw: bytes,
    max_hdus: int | None = None,
    backend: Backend = "auto",
    primary_keys: frozenset[str] | None = None,
) -> list[Hdu]:
    """Headers and data of the first ``max_hdus`` HDUs.

    Parameters
    ----------
    raw : bytes
        File contents (see `load_bytes`).
    max_hdus : int, optional
        Read at most this many HDUs (all when None); fewer come back if the file has fewer.
    backend : {"auto", "fast", "astropy"}
        "fast": the hand parser only (raises `FitsUnsupported` on what it does not handle);
        "astropy": ``astropy.io.fits`` only; "auto": fast, falling back to astropy on
        `FitsUnsupported`.
    primary_keys : frozenset of str, optional
        The primary header keywords the caller reads; the fast parser looks at no other
        (beyond the structural ones), so a card it cannot parse elsewhere in that header
        does not send the file to astropy. Whole headers come back from astropy. All
        keywords when None.

    Returns
    -------
    list of Hdu

    Raises
    ------
    FitsFormatError
        Damaged or non-FITS bytes.
    FitsUnsupported
        Only with ``backend="fast"``.
    """
    if backend == "astropy":
        return _read_hdus_astropy(raw, max_hdus)
    if backend not in ("auto", "fast"):
        raise InputError(f"unknown backend {backend!r}")
    try:
        return _read_hdus_fast(raw, max_hdus, primary_keys)
    except FitsUnsupported:
        if backend == "fast":
            raise
        check_structure(raw, max_hdus)  # what astropy would trust (or loop over)
        return _read_hdus_astropy(raw, max_hdus)


def read_header_and_data(
    raw: bytes, hdu: int = 0, backend: Backend = "auto"
) -> tuple[dict[str, Any], Any]:
    """Header and data of HDU number ``hdu``.

    Parameters
    ----------
    raw : bytes
        File contents (see `load_bytes`).
    hdu : int
        HDU index, 0 for the primary.
    backend : {"auto", "fast", "astropy"}
        As for `read_hdus`.

    Returns
    -------
    header : dict
    data : None, ndarray or dict
        See `Hdu.data`.

    Raises
    ------
    FitsFormatError
        Damaged bytes, or the file has fewer than ``hdu + 1`` HDUs.
    """
    hdus = read_hdus(raw, hdu + 1, backend)
    if len(hdus) <= hdu:
        raise FitsFormatError(f"HDU {hdu} absent (file has {len(hdus)})")
    return hdus[hdu]
