"""The output catalogue: its columns' units, and writing and reading it (FITS and CSV).

A catalogue holds one row per usable spectrum: identity (id, obsid, ra, dec, snr,
source), the estimates Teff [K], log g [dex], [Fe/H] [dex] with errors, the match's
quality (chi2, pixels used, flag bits described in the header) and, for a fit, the RV
[km/s], label correlations and convergence; ``ref_*`` columns hold reference labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.inference.flags import MatchFlag
from sost_jax.library.templates import Library
from sost_jax.runtime.files import replacing

UNITS = {
    "ra": "deg",
    "dec": "deg",
    "teff": "K",
    "teff_err": "K",
    "teff_err_formal": "K",
    "ref_teff": "K",
    "rv": "km s-1",
    "rv_err": "km s-1",
    **{f"{n}{s}": "dex" for n in ("logg", "feh") for s in ("", "_err", "_err_formal")},
    "ref_logg": "dex",
    "ref_feh": "dex",
}
"""Units of catalogue columns. The FITS standard has no dex: a dex column has no TUNITn;
its unit is in astropy's serialized-column header cards (astropy reads it back, with no
warning) and in its description, TCOMMn = "[dex]", which TOPCAT shows."""


def library_hash(library: Library) -> str:
    """sha256 of a library's flux, labels and wavelengths (first 16 hex digits)."""
    arrays = (library.flux, library.labels, library.wave)
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def catalogue_table(columns: Mapping[str, np.ndarray]) -> Any:
    """Catalogue columns as an `astropy.table.Table` with their units (K, dex, km/s)."""
    import astropy.units as u
    from astropy.table import Table

    table = Table({k: np.asarray(v) for k, v in columns.items()})
    for name, unit in UNITS.items():
        if name in table.colnames:
            table[name].unit = u.dex if unit == "dex" else unit
    for flag in MatchFlag:
        if flag.value:
            table.meta[f"FLAG{flag.value}"] = flag.name
    return table


def write_catalogue(
    out: str | os.PathLike,
    columns: Mapping[str, np.ndarray],
    library: Library | None = None,
    record: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``catalogue.fits`` and ``catalogue.csv`` into ``out``, each atomically.

    Columns keep their order; units go into the FITS table (dex as `UNITS` says), and the
    header describes the flag bits and names the library (LIBKIND, LIBHASH) and the run
    settings (SOSTRUN, JSON). Returns the two paths.
    """
    from astropy.table import QTable

    out = Path(out)
    table = catalogue_table(columns)
    if library is not None:
        table.meta["LIBKIND"] = str(library.meta.get("kind", ""))
        table.meta["LIBHASH"] = library_hash(library)
        table.meta["NTEMPL"] = len(library)
    if record is not None:
        table.meta["SOSTRUN"] = json.dumps(record, sort_keys=True, default=str)
    out.mkdir(parents=True, exist_ok=True)
    fits_path, csv_path = out / "catalogue.fits", out / "catalogue.csv"
    with replacing(fits_path) as tmp:
        _write_fits(QTable(table), tmp)
    text = table.copy(copy_data=False)
    text.meta.clear()
    with replacing(csv_path) as tmp:
        text.write(tmp, format="ascii.csv", overwrite=True)
    return fits_path, csv_path


def _write_fits(table: Any, path: Path) -> None:
    """``table`` (a QTable) as a FITS binary table, with dex columns described in TCOMMn."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    with warnings.catch_warnings():  # dex: kept in the serialized columns instead
        warnings.filterwarnings("ignore", "The unit 'dex'", AstropyUserWarning)
        table.write(path, format="fits", overwrite=True)
    with fits.open(path, mode="update") as hdus:
        for i, name in enumerate(table.colnames, start=1):
            if UNITS.get(name) == "dex":
                hdus[1].header[f"TCOMM{i}"] = "[dex]"


def read_catalogue(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A catalogue written by `write_catalogue` (FITS or CSV) as columns."""
    from astropy.table import Table

    path = Path(path)
    if path.suffix.lower() in (".fits", ".fit"):
        table = Table.read(path, format="fits", unit_parse_strict="silent")  # older: TUNIT dex
    else:
        table = Table.read(path, format="ascii.csv")
    out = {}
    for name in table.colnames:
        column = np.asarray(table[name])
        out[name] = column.astype(str) if column.dtype.kind == "S" else column
    return out
