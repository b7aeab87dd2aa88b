"""FITS HDUs, located and decoded fast: primary/IMAGE arrays and BINTABLE columns.

The data half of `sost_jax.data.io.fitsfast`: `scan` finds where each HDU's header and data
lie in the file bytes, `decode` reads images without scaling and binary tables of fixed-size
numeric or character fields as views of the bytes. Anything else raises `FitsUnsupported`;
structural damage (truncated data, inconsistent table layout) raises `FitsFormatError`.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, NamedTuple

import numpy as np

from sost_jax.data.io.fits_cards import BLOCK, FitsFormatError, FitsUnsupported, parse_header

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


_STRUCTURAL_INT = re.compile(rb"= *([+-]?[0-9]+) *(?:/|$)")
_STRUCTURAL_NAMES = re.compile(rb"(BITPIX|NAXIS[0-9]{0,3}|PCOUNT|GCOUNT|TFIELDS) *")


def check_structure(raw: bytes, max_hdus: int | None = None) -> None:
    """Check the mandatory keywords of the first ``max_hdus`` headers against the FITS
    standard and the file's length, reading nothing else.

    What the astropy fallback must never be given: NAXIS or TFIELDS outside 0-999, negative
    NAXISn, or data running past the end of the bytes (astropy loops over NAXISn and
    TFIELDS and trusts the sizes, so one such header can hold a run for minutes or take all
    memory). Cards are read as bytes, so a header
    the fast parser cannot read (non-ASCII, odd values) is still checked.

    Raises
    ------
    FitsFormatError
        A mandatory keyword missing, not an integer or out of range, no END card, or data
        past the end of the file.
    """
    pos, n, count = 0, len(raw), 0
    while pos < n and (max_hdus is None or count < max_hdus):
        if count and not raw[pos : pos + 8].strip(b" \0"):
            break  # padding after the last HDU
        header: dict[str, Any] = {}
        end = None
        for i in range(pos, n - 79, 80):
            name = raw[i : i + 8]
            if name == b"END     ":
                end = i
                break
            if name.startswith(b"GROUPS  "):
                header["GROUPS"] = raw[i + 8 : i + 80].lstrip(b"= ").startswith(b"T")
            elif _STRUCTURAL_NAMES.fullmatch(name):
                value = _STRUCTURAL_INT.match(raw, i + 8, i + 80)
                header.setdefault(name.decode().strip(), int(value.group(1)) if value else None)
        if end is None:
            raise FitsFormatError(f"HDU {count}: no END card")
        tfields = header.get("TFIELDS", 0)
        if tfields is None or not 0 <= tfields <= 999:
            raise FitsFormatError(f"HDU {count}: TFIELDS={tfields} outside 0-999")
        data_start = pos + -(-(end + 80 - pos) // BLOCK) * BLOCK
        size = _data_size(header)
        if data_start + size > n:
            raise FitsFormatError(
                f"HDU {count} needs {data_start + size} bytes by its NAXISn, the file has {n}"
            )
        pos = data_start + -(-size // BLOCK) * BLOCK
        count += 1


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
    if not 0 <= tfields <= 999:
        raise FitsFormatError(f"TFIELDS={tfields} outside 0-999")
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
        See `sost_jax.data.io.fitsfast.Hdu.data`. Arrays are read-only views of ``raw``.

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
