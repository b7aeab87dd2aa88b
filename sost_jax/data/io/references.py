"""Input catalogues (CSV or FITS tables of reference labels, ids, coordinates) -> ``dict[str,
ndarray]`` with standard column names. (The catalogues sost-jax writes are
`sost_jax.inference.catalogue`'s.)

Standard names: ``id``, ``ra``, ``dec`` [deg], ``snr``, ``teff`` [K], ``logg`` [dex],
``feh`` [dex], plus ``*_err`` and ``rv`` [km/s]. Source columns are renamed through an
alias table (case-insensitive); columns with no alias keep their name.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from sost_jax.data.io import fitsfast
from sost_jax.data.io.fitsfast import FitsUnsupported
from sost_jax.data.io.lamost import file_stem
from sost_jax.data.spectra import ReadError
from sost_jax.errors import InputError

STANDARD_NAMES: tuple[str, ...] = ("id", "ra", "dec", "snr", "teff", "logg", "feh")
"""Column names the rest of the package expects in a catalogue."""

DEFAULT_ALIASES: dict[str, str] = {
    "id": "id",
    "obsid": "id",
    "ra": "ra",
    "ra_obs": "ra",
    "radeg": "ra",
    "dec": "dec",
    "dec_obs": "dec",
    "dedeg": "dec",
    "snr": "snr",
    "sn": "snr",
    "teff": "teff",
    "pred_teff": "teff",
    "logg": "logg",
    "log_g": "logg",
    "pred_logg": "logg",
    "feh": "feh",
    "fe_h": "feh",
    "[fe/h]": "feh",
    "pred_feh": "feh",
    "rv": "rv",
    "pred_rv": "rv",
    "teff_err": "teff_err",
    "pred_teff_err": "teff_err",
    "logg_err": "logg_err",
    "pred_logg_err": "logg_err",
    "feh_err": "feh_err",
    "pred_feh_err": "feh_err",
    "rv_err": "rv_err",
    "pred_rv_err": "rv_err",
}
"""Lower-case source column name -> standard name. Earlier entries win when two source
columns would get the same name (e.g. ``id`` before ``obsid``); the loser keeps its name."""

_FITS_NAMES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_INT_RE = re.compile(r"^[+-]?\d+$")
_MILES_MISSING_TEFF = 99999.0
_MILES_MISSING_OTHER = 9999.0


def _column_from_strings(values: list[str]) -> np.ndarray:
    """int64 if every value is an integer, else float64 (empty -> NaN), else str."""
    values = [v.strip() for v in values]
    if values and all(_INT_RE.match(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    try:
        return np.array([float(v) if v else math.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def _read_csv(path: Path, delimiter: str) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.reader(lines, delimiter=delimiter))
    if not rows:
        raise InputError("no header row")
    names = [name.strip() for name in rows[0]]
    if len(set(names)) != len(names) or "" in names:
        raise InputError(f"empty or duplicate column names in {names}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            raise InputError(f"data row {number} has {len(row)} fields, header {len(names)}")
    return {
        name: _column_from_strings([row[j] for row in rows[1:]]) for j, name in enumerate(names)
    }


def _read_fits_table(path: Path, hdu: int) -> dict[str, np.ndarray]:
    raw = fitsfast.load_bytes(path)
    _, data = fitsfast.read_header_and_data(raw, hdu)
    if not isinstance(data, dict):
        raise InputError(f"HDU {hdu} is not a binary table")
    out = {}
    for name, column in data.items():
        column = np.asarray(column)
        if column.dtype.kind == "S":
            column = np.char.rstrip(np.char.decode(column, "ascii", "replace"))
        elif column.dtype.kind in "iufcb":
            column = column.astype(column.dtype.newbyteorder("="))
        out[name] = column
    return out


def _rename(
    table: dict[str, np.ndarray],
    columns: Mapping[str, str] | Sequence[str] | None,
    aliases: Mapping[str, str],
) -> dict[str, np.ndarray]:
    if isinstance(columns, Mapping):
        missing = [c for c in columns if c not in table]
        if missing:
            raise InputError(f"column(s) {missing} not found; have {list(table)}")
        targets = list(columns.values())
        if len(set(targets)) != len(targets):
            raise InputError(f"several columns renamed to the same name: {targets}")
        return {columns[c]: table[c] for c in columns}
    lower = {k.lower(): v for k, v in aliases.items()}
    priority = {k: i for i, k in enumerate(lower)}
    claimed: dict[str, str] = {}  # standard name -> winning source column
    for name in sorted(table, key=lambda c: priority.get(c.lower(), len(priority))):
        target = lower.get(name.lower())
        if target is not None and target not in claimed:
            claimed[target] = name
    new_names = {source: target for target, source in claimed.items()}
    out: dict[str, np.ndarray] = {}
    for name in table:
        new = new_names.get(name, name)
        if new in out:
            raise InputError(f"two columns would be named {new!r}; pass columns= to choose")
        out[new] = table[name]
    if columns is not None:
        missing = [c for c in columns if c not in out]
        if missing:
            raise InputError(f"column(s) {missing} not found; have {list(out)}")
        out = {c: out[c] for c in columns}
    return out


def _clean_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as str, without directory and FITS suffix (``3703110.fits`` -> ``3703110``)."""
    return np.array([file_stem(str(v)) for v in ids], dtype=str)


def read_reference_catalog(
    path: str | PathLike[str],
    columns: Mapping[str, str] | Sequence[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    hdu: int = 1,
    delimiter: str = ",",
) -> dict[str, np.ndarray]:
    """Read a CSV or FITS-table catalogue into named columns.

    Parameters
    ----------
    path : str or path-like
        ``.csv``/``.txt``/``.tsv`` (``#`` lines are comments, first row names the columns)
        or ``.fits``/``.fits.gz`` binary table.
    columns : mapping or sequence of str, optional
        A mapping ``{source name: new name}`` selects and renames exactly those columns
        (aliases unused). A sequence selects columns by their name after aliasing.
        None keeps every column.
    aliases : mapping, optional
        Source name (case-insensitive) -> standard name; defaults to `DEFAULT_ALIASES`
        (pass ``{}`` to keep the file's names).
    hdu : int
        HDU of a FITS table.
    delimiter : str
        Field separator of a text table (tab for ``.tsv``).

    Returns
    -------
    dict of str -> ndarray [N]
        Columns: int64 or float64 (empty CSV fields -> NaN) or str. An ``id`` column is
        returned as str without directory and ``.fits``/``.fits.gz`` suffix, to match the
        ``meta["id"]`` of the readers.

    Raises
    ------
    ReadError
        Unreadable file, ragged rows, unknown format, or requested columns missing; the
        message starts with the path.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(_FITS_NAMES):
            table = _read_fits_table(path, hdu)
        elif name.endswith((".csv", ".txt", ".dat", ".tsv")):
            table = _read_csv(path, "\t" if name.endswith(".tsv") else delimiter)
        else:
            raise InputError("unknown catalogue format (expected .csv, .tsv, .txt or .fits)")
        table = _rename(table, columns, DEFAULT_ALIASES if aliases is None else aliases)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, FitsUnsupported) as err:
        raise ReadError(f"{path}: {err}") from err
    if "id" in table:
        table["id"] = _clean_ids(table["id"])
    return table


def read_miles_params(path: str | PathLike[str]) -> dict[str, np.ndarray]:
    """Read the MILES parameter table ``MILES_params.db``.

    Parameters
    ----------
    path : str or path-like
        Whitespace table, ``#`` comments, columns MILES number, Teff, log g, [Fe/H];
        99999 (Teff) and 9999 (log g, [Fe/H]) mean no value. Lines whose MILES number is
        not an integer (v9.1 has one, "022.") are skipped with a warning.

    Returns
    -------
    dict
        ``miles_id`` int64 [N]; ``teff`` [K], ``logg`` [dex], ``feh`` [dex] float64 [N]
        with NaN for missing values.

    Raises
    ------
    ReadError
        Unreadable file or a line without 4 numbers; the message starts with the path.
    """
    ids: list[int] = []
    values: list[list[float]] = []
    try:
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                fields = line.split("#", 1)[0].split()
                if not fields:
                    continue
                if len(fields) != 4:
                    raise InputError(f"line {number}: expected 4 fields, got {len(fields)}")
                if not fields[0].isdigit():
                    # v9.1 lists one star as "022." (m0221?); do not guess, skip it
                    warnings.warn(
                        f"{path}: line {number}: MILES number {fields[0]!r} unreadable, skipped",
                        stacklevel=2,
                    )
                    continue
                ids.append(int(fields[0]))
                values.append([float(v) for v in fields[1:]])
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ReadError(f"{path}: {err}") from err
    arr = np.array(values, dtype=np.float64).reshape(-1, 3)
    teff, logg, feh = arr.T.copy()
    teff[teff >= _MILES_MISSING_TEFF] = np.nan
    logg[np.abs(logg) >= _MILES_MISSING_OTHER] = np.nan
    feh[np.abs(feh) >= _MILES_MISSING_OTHER] = np.nan
    return {"miles_id": np.array(ids, dtype=np.int64), "teff": teff, "logg": logg, "feh": feh}


def labels_by_id(catalog: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    """Map id -> (Teff [K], log g [dex], [Fe/H] [dex]) from a catalogue of `read_reference_catalog`.

    Raises
    ------
    ValueError
        The catalogue lacks one of the columns id, teff, logg, feh.
    """
    missing = [k for k in ("id", "teff", "logg", "feh") if k not in catalog]
    if missing:
        raise InputError(f"label catalogue lacks column(s) {', '.join(missing)}")
    columns = (catalog["id"], catalog["teff"], catalog["logg"], catalog["feh"])
    return {str(i): (float(t), float(g), float(f)) for i, t, g, f in zip(*columns, strict=True)}
