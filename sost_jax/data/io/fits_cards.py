"""FITS header cards, parsed fast: keywords and their values (numbers, logicals, strings).

The header half of `sost_jax.data.io.fitsfast`. Header dictionaries keep the first occurrence
of each keyword and skip commentary cards (COMMENT, HISTORY, blank keywords) and HIERARCH
cards. A card this parser does not understand raises `FitsUnsupported` (the caller then reads
the file with astropy); a header without END raises `FitsFormatError`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from sost_jax.errors import InputError

BLOCK = 2880
"""FITS block size [bytes]; headers and data are padded to multiples of it."""

CARD = 80
"""Length of one header card [bytes]."""

_NUMBER_START = frozenset("+-.0123456789")

_END_CARD = b"END" + b" " * 5

SKIP_KEYS = frozenset(("COMMENT", "HISTORY", "", "CONTINUE", "HIERARCH"))
"""Keywords of cards left out of header dictionaries (commentary, continuation, HIERARCH)."""


class FitsFormatError(InputError):
    """The bytes are not a readable FITS file (not FITS, no END card, truncated)."""


class FitsUnsupported(Exception):
    """The fast path does not handle this file; use the astropy path instead."""


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
    return {k: _parse_value(v) for k, v in reversed(fields.items()) if k not in SKIP_KEYS}


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
