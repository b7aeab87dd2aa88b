"""A small, fast FITS reader for the simple files surveys ship by the million.

Only what spectra need: header cards (numbers, logicals, strings), primary/IMAGE arrays
without scaling, and BINTABLE columns of fixed-size numeric or character fields. Anything
else raises `FitsUnsupported`, and the caller falls back to ``astropy.io.fits`` through the
same interface (``backend="auto"``). Structural damage (not FITS, no END card, truncated
data) raises `FitsFormatError` and is not retried.

Header dictionaries keep the first occurrence of each keyword and skip commentary cards
(COMMENT, HISTORY, blank keywords) and HIERARCH cards.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import re
import warnings
import zlib
from os import PathLike
from typing import Any, Literal, NamedTuple

import numpy as np

from sost_jax.errors import InputError

BLOCK = 2880
"""FITS block size [bytes]; headers and data are padded to multiples of it."""

CARD = 80
"""Length of one header card [bytes]."""

Backend = Literal["auto", "fast", "astropy"]

_IMAGE_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_TFORM_DTYPES = {
    "B": ">u1",
    "I": ">i2",
    "J": ">i4",
    "K": ">i8",
    "E": ">f4",
    "D": ">f8",
    "C": ">c8",
    "M": ">c16",
}
_TFORM_RE = re.compile(r"^\s*(\d*)([A-Z])(.*)$")
_NUMBER_START = frozenset("+-.0123456789")
_END_CARD = b"END" + b" " * 5
_SKIP_KEYS = frozenset(("COMMENT", "HISTORY", "", "CONTINUE", "HIERARCH"))


class FitsFormatError(InputError):
    """The bytes are not a readable FITS file (not FITS, no END card, truncated)."""


class FitsUnsupported(Exception):
    """The fast path does not handle this file; use the astropy path instead."""


class HduInfo(NamedTuple):
    """Where one HDU lies in the file bytes.

    Attributes
    ----------
    header : dict
        Keyword -> value (int, float, bool, str or None).
    data_start : int
        Offset of the first data byte.
    data_size : int
        Data size [bytes], without the padding to a whole block.
    """

    header: dict[str, Any]
    data_start: int
    data_size: int


class Hdu(NamedTuple):
    """One decoded HDU.

    Attributes
    ----------
    header : dict
        Keyword -> value, as in `HduInfo`.
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


def _parse_string(text: str) -> str:
    """Parse a quoted FITS string starting at ``text[0] == "'"``; '' is an escaped quote."""
    parts = []
    i = 1
    while True:
        j = text.find("'", i)
        if j < 0:
            raise FitsUnsupported("unterminated string value")
        if text[j + 1 : j + 2] == "'":
            parts.append(text[i : j + 1])
            i = j + 2
            continue
        parts.append(text[i:j])
        break
    value = "".join(parts).rstrip()
    if value.endswith("&"):
        raise FitsUnsupported("long-string (CONTINUE) value")
    return value


@functools.lru_cache(maxsize=8192)
def _parse_value(text: str) -> Any:
    """Parse the value field of a card (columns 10-80): str, bool, int, float or None.

    Cached: survey headers repeat most of their cards from file to file.
    """
    if text[:1] != " ":
        raise FitsUnsupported("value indicator '=' not followed by a space")
    text = text.lstrip()
    if not text:
        return None
    if text[0] == "'":
        return _parse_string(text)
    token = text.partition("/")[0].strip()
    if not token:
        return None
    if token == "T":
        return True
    if token == "F":
        return False
    if token.isdigit() or (token[0] in "+-" and token[1:].isdigit()):
        return int(token)
    if token[0] not in _NUMBER_START or "_" in token:
        raise FitsUnsupported(f"value {token!r}")
    try:
        return float(token.replace("D", "E").replace("d", "e"))
    except ValueError as err:
        raise FitsUnsupported(f"value {token!r}") from err


def parse_header(
    raw: bytes, start: int, keys: frozenset[str] | None = None
) -> tuple[dict[str, Any], int]:
    """Parse the header that begins at byte ``start``.

    Parameters
    ----------
    raw : bytes
        File contents.
    start : int
        Offset of the header's first card (a multiple of 2880).
    keys : frozenset of str, optional
        Parse only these keywords and the structural ones (`STRUCTURAL`); the other cards
        are not looked at (a survey reader wants a dozen of a header's hundred cards, whose
        values change from file to file). All keywords when None.

    Returns
    -------
    header : dict
        Keyword -> value; first occurrence wins; commentary cards skipped.
    data_start : int
        Offset just past the header's last block.

    Raises
    ------
    FitsFormatError
        No END card before the end of the bytes.
    FitsUnsupported
        A card the fast parser does not understand (non-ASCII, complex value, ...).
    """
    end = _find_end(raw, start)
    cards = raw[start:end]
    header = dict(_parse_cards(cards)) if keys is None else _parse_some_cards(cards, keys)
    return header, start + -(-(end - start + CARD) // BLOCK) * BLOCK


@functools.lru_cache(maxsize=16)
def _parse_cards(cards: bytes) -> dict[str, Any]:
    """Keyword -> value of a header's cards (before END). Cached: a survey's extension
    headers repeat byte for byte from file to file (copy the result before changing it)."""
    try:
        text = cards.decode("ascii")
    except UnicodeDecodeError as err:
        raise FitsUnsupported("non-ASCII header bytes") from err
    # Reversed, so that the first occurrence of a repeated keyword wins.
    fields = {
        text[i : i + 8].rstrip(): text[i + 9 : i + CARD]
        for i in range(len(text) - CARD, -1, -CARD)
        if text[i + 8] == "="
    }
    return {k: _parse_value(v) for k, v in reversed(fields.items()) if k not in _SKIP_KEYS}


STRUCTURAL = frozenset(
    ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "GROUPS", "PCOUNT", "GCOUNT")
    + ("BSCALE", "BZERO", "BLANK", "ZIMAGE", "ZTABLE")
    + tuple(f"NAXIS{i}" for i in range(1, 10))
)
"""Keywords `parse_header` always parses: what the layout and size of the data depend on."""


def _parse_some_cards(cards: bytes, keys: frozenset[str]) -> dict[str, Any]:
    """Keyword -> value of the cards named in ``keys`` or `STRUCTURAL` (first occurrence).

    The keyword fields of all cards are compared as bytes in one pass; only the cards
    asked for are decoded and parsed.
    """
    n = len(cards) // CARD
    names = np.ndarray((n,), "S8", cards, 0, (CARD,)).tolist()
    wanted = _padded(keys)
    out: dict[str, Any] = {}
    for i, name in enumerate(names):
        if name in wanted and cards[i * CARD + 8] == 61:  # "=": a value card
            key = name.decode("ascii").rstrip()
            if key not in out:
                try:
                    text = cards[i * CARD + 9 : (i + 1) * CARD].decode("ascii")
                except UnicodeDecodeError as err:
                    raise FitsUnsupported("non-ASCII header bytes") from err
                out[key] = _parse_value(text)
    naxis = out.get("NAXIS")
    if isinstance(naxis, int) and naxis > 9:  # NAXISn beyond STRUCTURAL's: parse everything
        return dict(_parse_cards(cards))
    return out


@functools.lru_cache(maxsize=16)
def _padded(keys: frozenset[str]) -> frozenset[bytes]:
    """``keys`` and `STRUCTURAL` as 8-byte keyword fields (NumPy's "S8" drops trailing
    NULs, not blanks)."""
    return frozenset(k.ljust(8).encode("ascii") for k in keys | STRUCTURAL if len(k) <= 8)


def _find_end(raw: bytes, start: int) -> int:
    """Offset of the END card of the header starting at ``start`` (card-aligned)."""
    pos = start
    while True:
        i = raw.find(_END_CARD, pos)
        if i < 0:
            raise FitsFormatError("header truncated (no END card)")
        if (i - start) % CARD == 0:
            if i + CARD > len(raw):
                raise FitsFormatError("header truncated (no END card)")
            return i
        pos = i + 1


def _int_key(header: dict[str, Any], key: str, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FitsFormatError(f"mandatory keyword {key} missing or not an integer")
    return value


def _data_size(header: dict[str, Any]) -> int:
    """Size of the HDU's data [bytes], without padding, from BITPIX/NAXISn/PCOUNT/GCOUNT."""
    bitpix = _int_key(header, "BITPIX")
    naxis = _int_key(header, "NAXIS")
    if bitpix not in _IMAGE_DTYPES or not 0 <= naxis <= 999:
        raise FitsFormatError(f"invalid BITPIX={bitpix} or NAXIS={naxis}")
    if naxis == 0:
        return 0
    dims = [_int_key(header, f"NAXIS{i}") for i in range(1, naxis + 1)]
    if header.get("GROUPS") is True and dims[0] == 0:
        dims = dims[1:]  # random groups: NAXIS1 = 0 is a placeholder
    if any(d < 0 for d in dims):
        raise FitsFormatError("negative NAXISn")
    pcount = _int_key(header, "PCOUNT", 0)
    gcount = _int_key(header, "GCOUNT", 1)
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(dims))


def scan(
    raw: bytes, max_hdus: int | None = None, primary_keys: frozenset[str] | None = None
) -> list[HduInfo]:
    """Parse the headers of the first ``max_hdus`` HDUs (all when None).

    Parameters
    ----------
    raw : bytes
        File contents.
    max_hdus : int, optional
        Stop after this many HDUs; the list is shorter when the file has fewer.
    primary_keys : frozenset of str, optional
        Parse only these (and the structural) keywords of the primary header (see
        `parse_header`); all when None. Extension headers are always parsed whole.

    Returns
    -------
    list of HduInfo
        One per HDU found, in file order.

    Raises
    ------
    FitsFormatError
        Not a FITS file, no END card, or an HDU's data runs past the end of the bytes.
    FitsUnsupported
        A header the fast parser does not understand.
    """
    if raw[:9] != b"SIMPLE  =":
        raise FitsFormatError("not a FITS file (no SIMPLE card)")
    infos: list[HduInfo] = []
    pos = 0
    n = len(raw)
    while max_hdus is None or len(infos) < max_hdus:
        if infos and (pos >= n or not raw[pos : pos + 8].strip(b" \0")):
            break  # end of file, or zero/blank padding after the last HDU
        if infos and raw[pos : pos + 9] != b"XTENSION=":
            raise FitsUnsupported(f"bytes after HDU {len(infos) - 1} are not an XTENSION")
        header, data_start = parse_header(raw, pos, None if infos else primary_keys)
        size = _data_size(header)
        if size and data_start + size > n:
            raise FitsFormatError(
                f"truncated: HDU {len(infos)} needs {data_start + size} bytes, file has {n}"
            )
        infos.append(HduInfo(header, data_start, size))
        pos = data_start + -(-size // BLOCK) * BLOCK
    return infos


def _check_unscaled(header: dict[str, Any], scale_key: str, zero_key: str) -> None:
    if header.get(scale_key, 1) != 1 or header.get(zero_key, 0) != 0:
        raise FitsUnsupported(f"scaled data ({scale_key}/{zero_key})")


def _decode_image(raw: bytes, info: HduInfo) -> np.ndarray | None:
    h = info.header
    naxis = h["NAXIS"]
    if naxis == 0:
        return None
    if h.get("GROUPS") is True:
        raise FitsUnsupported("random groups")
    _check_unscaled(h, "BSCALE", "BZERO")
    if "BLANK" in h:
        raise FitsUnsupported("BLANK keyword")
    if h.get("PCOUNT", 0) != 0 or h.get("GCOUNT", 1) != 1:
        raise FitsUnsupported("PCOUNT/GCOUNT in an image")
    shape = tuple(h[f"NAXIS{i}"] for i in range(naxis, 0, -1))
    dtype = np.dtype(_IMAGE_DTYPES[h["BITPIX"]])
    return np.frombuffer(raw, dtype, count=math.prod(shape), offset=info.data_start).reshape(shape)


def _decode_bintable(raw: bytes, info: HduInfo) -> dict[str, np.ndarray]:
    dtype, char_cols = _table_layout(tuple(info.header.items()))
    if dtype is None:
        return {}
    table = np.frombuffer(raw, dtype, count=info.header["NAXIS2"], offset=info.data_start)
    columns = {name: table[name] for name in dtype.names}
    for name in char_cols:
        columns[name] = np.char.rstrip(columns[name].astype(str))
    return columns


@functools.lru_cache(maxsize=16)
def _table_layout(items: tuple[tuple[str, Any], ...]) -> tuple[np.dtype | None, list[str]]:
    """The record dtype of a BINTABLE's rows (None without columns) and its character
    columns, from its header's items. Cached: a survey's files share their table layout."""
    h = dict(items)
    if h.get("ZIMAGE") is True or h.get("ZTABLE") is True:
        raise FitsUnsupported("tile-compressed HDU")
    if h["NAXIS"] != 2 or h["BITPIX"] != 8 or h.get("GCOUNT", 1) != 1:
        raise FitsFormatError("BINTABLE needs NAXIS=2, BITPIX=8, GCOUNT=1")
    row_bytes = h["NAXIS1"]
    tfields = _int_key(h, "TFIELDS")
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    char_cols: list[str] = []
    offset = 0
    for i in range(1, tfields + 1):
        name, tform = h.get(f"TTYPE{i}"), h.get(f"TFORM{i}")
        if not isinstance(name, str) or not name or name in names:
            raise FitsUnsupported(f"column {i} unnamed or duplicate")
        if not isinstance(tform, str) or (m := _TFORM_RE.match(tform)) is None:
            raise FitsFormatError(f"bad TFORM{i}={tform!r}")
        if f"TDIM{i}" in h:
            raise FitsUnsupported(f"TDIM{i}")
        _check_unscaled(h, f"TSCAL{i}", f"TZERO{i}")
        repeat = int(m.group(1)) if m.group(1) else 1
        code = m.group(2)
        if code == "A":
            fmt: Any = f"S{repeat}"
            width = repeat
            char_cols.append(name)
        elif code in _TFORM_DTYPES and repeat > 0:
            base = np.dtype(_TFORM_DTYPES[code])
            fmt = base if repeat == 1 else (base, (repeat,))
            width = base.itemsize * repeat
        else:
            raise FitsUnsupported(f"TFORM{i}={tform!r}")
        names.append(name)
        formats.append(fmt)
        offsets.append(offset)
        offset += width
    if offset != row_bytes:
        raise FitsFormatError(f"columns span {offset} bytes but NAXIS1={row_bytes}")
    if not names:
        return None, []
    return np.dtype({"names": names, "formats": formats, "offsets": offsets}), char_cols


def decode(raw: bytes, info: HduInfo) -> Any:
    """Decode the data of one HDU found by `scan`.

    Parameters
    ----------
    raw : bytes
        File contents.
    info : HduInfo
        One entry of ``scan(raw)``.

    Returns
    -------
    None, ndarray or dict
        See `Hdu.data`. Arrays are read-only views of ``raw``.

    Raises
    ------
    FitsUnsupported
        Scaled data, variable-length or bit columns, compressed or ASCII-table HDUs, ...
    """
    xtension = info.header.get("XTENSION")
    if xtension is None or xtension == "IMAGE":
        return _decode_image(raw, info)
    if xtension == "BINTABLE":
        return _decode_bintable(raw, info)
    raise FitsUnsupported(f"XTENSION={xtension!r}")


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
        if key in _SKIP_KEYS or key in out:
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
