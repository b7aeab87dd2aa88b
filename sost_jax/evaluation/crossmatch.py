"""Cross-matching: estimated labels paired with the labels of a reference catalogue.

Estimates (the ``estimate`` columns of `sost_jax.inference.matching`) are paired with
reference rows of the same id (`crossmatch_by_id`) or with the nearest reference star on the
sky within a radius (`crossmatch_by_sky`); `crossmatch` chooses between them and gathers the
matched labels, est and ref side by side, for `sost_jax.evaluation.metrics`.

Units: Teff [K], log g [dex, cgs], [Fe/H] [dex], right ascension and declination [deg],
separations [arcsec]. Everything is NumPy; nothing is kept between calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError

Table = Mapping[str, Any]
"""A table: column name -> 1-D array (a dict, an astropy Table, ...)."""


def _column_names(table: Table) -> list[str]:
    """Column names of a dict, an astropy Table or a structured array."""
    if hasattr(table, "colnames"):
        return list(table.colnames)
    dtype = getattr(table, "dtype", None)
    if dtype is not None and dtype.names is not None:
        return list(dtype.names)
    return list(table.keys())


def _column(table: Table, name: str, dtype: Any = None) -> np.ndarray:
    """One column as a plain 1-D array; masked float entries become NaN."""
    column = table[name]
    if isinstance(column, np.ma.MaskedArray):
        if column.dtype.kind == "f" or dtype is float:
            column = np.ma.filled(column.astype(float), np.nan)
        else:
            column = np.ma.getdata(column)
    out = np.asarray(column) if dtype is None else np.asarray(column, dtype=dtype)
    if out.ndim != 1:
        raise InputError(f"column {name!r} must be 1-D, got shape {out.shape}")
    return out


def _id_strings(ids: Any) -> np.ndarray:
    """Ids as stripped str; integer-valued floats lose their ``.0``, NaN becomes ``""``."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise InputError(f"ids must be 1-D, got shape {ids.shape}")
    if ids.dtype.kind == "S":
        ids = np.char.decode(ids, "ascii", "replace")
    elif ids.dtype.kind == "f":
        out = np.full(ids.shape, "", dtype=object)
        finite = np.isfinite(ids)
        whole = finite & (ids == np.round(np.where(finite, ids, 0.0)))
        out[whole] = [str(int(v)) for v in ids[whole]]
        out[finite & ~whole] = [repr(float(v)) for v in ids[finite & ~whole]]
        ids = out
    elif ids.dtype.kind == "O":
        ids = np.array(
            [v.decode("ascii", "replace") if isinstance(v, bytes) else str(v) for v in ids],
            dtype=object,
        )
    return np.char.strip(ids.astype(str))


def crossmatch_by_id(est_ids: Any, ref_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pair estimates with reference rows of the same id.

    Ids are compared as stripped strings (``3703110``, ``" 3703110 "`` and ``b"3703110"``
    agree; so do the integer 3703110 and the float 3703110.0). Empty ids never match.

    Parameters
    ----------
    est_ids : [N]
        Ids of the estimates (str, bytes or integers).
    ref_ids : [M]
        Ids of the reference catalogue. When an id occurs several times, its first row is
        used.

    Returns
    -------
    i_est, i_ref : int64 [K]
        Rows of the matched pairs, in the order of the estimates; every estimate whose id is
        in the reference appears once (so a repeated estimate id appears each time).
    """
    est = _id_strings(est_ids)
    ref = _id_strings(ref_ids)
    if len(ref) == 0 or len(est) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    unique, first = np.unique(ref, return_index=True)
    pos = np.clip(np.searchsorted(unique, est), 0, len(unique) - 1)
    found = (unique[pos] == est) & (est != "")
    i_est = np.flatnonzero(found).astype(np.int64)
    return i_est, first[pos[found]].astype(np.int64)


def crossmatch_by_sky(
    est_ra: Any,
    est_dec: Any,
    ref_ra: Any,
    ref_dec: Any,
    radius_arcsec: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair every estimate with its nearest reference star on the sky, within a radius.

    Uses `astropy.coordinates.SkyCoord.match_to_catalog_sky`. Rows with a NaN (or infinite)
    coordinate never match. Two estimates may share the nearest reference star.

    Parameters
    ----------
    est_ra, est_dec : [N]
        Right ascension and declination of the estimates [deg].
    ref_ra, ref_dec : [M]
        Right ascension and declination of the reference stars [deg].
    radius_arcsec : float
        Largest accepted separation [arcsec]; pairs at exactly this separation match.

    Returns
    -------
    i_est, i_ref : int64 [K]
        Rows of the matched pairs, in the order of the estimates.
    sep_arcsec : float64 [K]
        Their separations [arcsec].
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    est_ra, est_dec = np.asarray(est_ra, float), np.asarray(est_dec, float)
    ref_ra, ref_dec = np.asarray(ref_ra, float), np.asarray(ref_dec, float)
    if est_ra.shape != est_dec.shape or est_ra.ndim != 1:
        raise InputError(f"est_ra {est_ra.shape} and est_dec {est_dec.shape} must be [N]")
    if ref_ra.shape != ref_dec.shape or ref_ra.ndim != 1:
        raise InputError(f"ref_ra {ref_ra.shape} and ref_dec {ref_dec.shape} must be [M]")
    if not radius_arcsec >= 0:
        raise InputError(f"radius_arcsec must be >= 0, got {radius_arcsec}")
    est_ok = np.flatnonzero(np.isfinite(est_ra) & np.isfinite(est_dec))
    ref_ok = np.flatnonzero(np.isfinite(ref_ra) & np.isfinite(ref_dec))
    if len(est_ok) == 0 or len(ref_ok) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    if np.any(np.abs(est_dec[est_ok]) > 90) or np.any(np.abs(ref_dec[ref_ok]) > 90):
        raise InputError("declinations must lie within [-90, 90] deg")
    est = SkyCoord(est_ra[est_ok] * u.deg, est_dec[est_ok] * u.deg)
    ref = SkyCoord(ref_ra[ref_ok] * u.deg, ref_dec[ref_ok] * u.deg)
    nearest, sep, _ = est.match_to_catalog_sky(ref)
    sep = np.atleast_1d(sep.to_value(u.arcsec)).astype(np.float64)
    keep = sep <= radius_arcsec
    return (
        est_ok[keep].astype(np.int64),
        ref_ok[np.atleast_1d(nearest)[keep]].astype(np.int64),
        sep[keep],
    )


def _match_by_id(estimates: Table, reference: Table) -> tuple[np.ndarray, np.ndarray]:
    """`crossmatch_by_id` of the ``id`` columns of two tables."""
    return crossmatch_by_id(_column(estimates, "id"), _column(reference, "id"))


def _match_by_sky(
    estimates: Table, reference: Table, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`crossmatch_by_sky` of the ``ra``, ``dec`` columns [deg] of two tables."""
    return crossmatch_by_sky(
        _column(estimates, "ra", float),
        _column(estimates, "dec", float),
        _column(reference, "ra", float),
        _column(reference, "dec", float),
        radius_arcsec,
    )


def _matched_rows(
    estimates: Table,
    reference: Table,
    by: str,
    radius_arcsec: float,
    est_names: set[str],
    ref_names: set[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows ``i_est``, ``i_ref`` int64 [K] of the pairs, by id or by sky as ``by`` asks
    (see `crossmatch`), and their separations [arcsec] [K] (None for id matches)."""
    has_id = "id" in est_names and "id" in ref_names
    has_sky = {"ra", "dec"} <= est_names and {"ra", "dec"} <= ref_names
    have = f"estimates have {sorted(est_names)}, reference has {sorted(ref_names)}"
    if by == "id":
        if not has_id:
            raise InputError(f"by='id' needs an 'id' column in both tables; {have}")
        return (*_match_by_id(estimates, reference), None)
    if by == "auto" and has_id:
        i_est, i_ref = _match_by_id(estimates, reference)
        if len(i_est) > 0:
            return i_est, i_ref, None
    if not has_sky:
        if by == "sky":
            raise InputError(f"by='sky' needs 'ra' and 'dec' columns in both tables; {have}")
        why = "the tables share no id" if has_id else "need an 'id' column in both"
        raise InputError(
            f"cannot cross-match: {why}, and 'ra' and 'dec' are not in both tables; {have}"
        )
    return _match_by_sky(estimates, reference, radius_arcsec)


def _matched_labels(
    estimates: Table,
    reference: Table,
    est_names: set[str],
    ref_names: set[str],
    i_est: np.ndarray,
    i_ref: np.ndarray,
) -> dict[str, np.ndarray]:
    """``est_<name>``, ``ref_<name>`` float64 [K] of the matched rows (NaN for a label a
    table lacks), then ``id``, ``snr`` and ``flags`` where present (see `crossmatch`)."""
    out: dict[str, np.ndarray] = {}
    for name in LABEL_NAMES:
        for prefix, table, names, rows in (
            ("est", estimates, est_names, i_est),
            ("ref", reference, ref_names, i_ref),
        ):
            values = (
                _column(table, name, float)[rows]
                if name in names
                else np.full(len(rows), np.nan, np.float64)
            )
            out[f"{prefix}_{name}"] = values
    if "id" in est_names:
        out["id"] = _id_strings(_column(estimates, "id"))[i_est]
    elif "id" in ref_names:
        out["id"] = _id_strings(_column(reference, "id"))[i_ref]
    if "snr" in est_names:
        out["snr"] = _column(estimates, "snr", float)[i_est]
    elif "snr" in ref_names:
        out["snr"] = _column(reference, "snr", float)[i_ref]
    if "flags" in est_names:
        out["flags"] = _column(estimates, "flags")[i_est]
    return out


def crossmatch(
    estimates: Table,
    reference: Table,
    by: str = "auto",
    radius_arcsec: float = 3.0,
) -> dict[str, np.ndarray]:
    """Pair estimated labels with reference labels, by id or by sky position.

    Parameters
    ----------
    estimates : mapping column name -> [N]
        Estimated labels ``teff`` [K], ``logg`` [dex], ``feh`` [dex] (a label missing here
        or in the reference gives NaN), with ``id`` and/or ``ra``, ``dec`` [deg]; optional
        ``snr`` and ``flags`` are carried along. A dict or an astropy Table.
    reference : mapping column name -> [M]
        Reference catalogue with the same standard names
        (`sost_jax.data.io.read_reference_catalog`).
    by : {"auto", "id", "sky"}
        ``"auto"``: by id when both tables have an ``id`` column and they share at least one
        id, else by sky position (``ra``/``dec`` in both).
    radius_arcsec : float
        Largest separation of a sky match [arcsec].

    Returns
    -------
    dict of [K] arrays, one entry per matched pair
        ``est_teff``, ``ref_teff``, ``est_logg``, ``ref_logg``, ``est_feh``, ``ref_feh``
        (float64); ``id`` (str, the estimates' id, else the reference's) when either has
        one; ``snr`` (the estimates', else the reference's) and ``flags`` (the estimates')
        when present; ``sep_arcsec`` for sky matches; ``i_est``, ``i_ref`` the matched rows.

    Raises
    ------
    ValueError
        For an unknown ``by``, when the columns that ``by`` needs are missing (for "auto":
        neither a shared id nor ra/dec in both tables), or when no label is in both tables.
    """
    if by not in ("auto", "id", "sky"):
        raise InputError(f'by must be "auto", "id" or "sky", got {by!r}')
    est_names, ref_names = set(_column_names(estimates)), set(_column_names(reference))
    if not any(name in est_names and name in ref_names for name in LABEL_NAMES):
        raise InputError(
            f"no label column {LABEL_NAMES} is in both tables; estimates have "
            f"{sorted(est_names)}, reference has {sorted(ref_names)}"
        )
    i_est, i_ref, sep = _matched_rows(estimates, reference, by, radius_arcsec, est_names, ref_names)
    out = _matched_labels(estimates, reference, est_names, ref_names, i_est, i_ref)
    if sep is not None:
        out["sep_arcsec"] = sep
    out["i_est"], out["i_ref"] = i_est, i_ref
    return out
