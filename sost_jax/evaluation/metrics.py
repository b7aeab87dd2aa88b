"""Evaluation: estimated stellar labels against a reference catalogue.

Estimates (the ``estimate`` columns of `sost_jax.inference.grid_estimate`) are paired with
reference labels by id or by position on the sky (`crossmatch`); the differences est - ref
are summarised by
their bias, scatter and robust scatter (`bias_scatter`, `summary_table`), per S/N bin
(`binned_stats`) and per cell of the Teff-log g plane (`cell_stats`), with bootstrap
intervals (`bootstrap_interval`); `write_report` writes
the tables and figures of a run as a Markdown page, `format_table` the tables for a terminal.

Units everywhere: Teff [K], log g [dex, cgs], [Fe/H] [dex], right ascension and declination
[deg], separations [arcsec]. Everything is NumPy; nothing is kept between calls.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError

LABEL_UNITS: dict[str, str] = {"teff": "K", "logg": "dex", "feh": "dex"}
"""Unit of each label."""

LABEL_TITLES: dict[str, str] = {"teff": "Teff", "logg": "log g", "feh": "[Fe/H]"}
"""How each label is written in tables and on axes."""

LABEL_DECIMALS: dict[str, int] = {"teff": 1, "logg": 3, "feh": 3}
"""Decimals printed for the statistics of each label (Teff in K, the others in dex)."""

SNR_EDGES: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 50.0, 100.0, math.inf)
"""Default S/N bin edges; bins are half-open, ``lo <= snr < hi``."""

FEH_RANGES: tuple[tuple[float, float], ...] = (
    (-math.inf, -1.0),
    (-1.0, -0.5),
    (-0.5, 0.0),
    (0.0, math.inf),
)
"""Default [Fe/H] ranges [dex] for maps of the Teff-log g plane; each is ``lo <= feh < hi``."""

ROBUST_SIGMA_PER_MAD: float = 1.4826
"""Standard deviation of a normal distribution in units of its median absolute deviation."""

_STAT_KEYS = ("n", "bias", "scatter", "robust_sigma")
_STAT_TITLES = ("n", "bias", "scatter", "robust sigma")

Table = Mapping[str, Any]
"""A table: column name -> 1-D array (a dict, an astropy Table, ...)."""


# --------------------------------------------------------------------------- cross-matching


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
    has_id = "id" in est_names and "id" in ref_names
    has_sky = {"ra", "dec"} <= est_names and {"ra", "dec"} <= ref_names

    method = by
    if by == "auto":
        if has_id:
            i_est, i_ref = crossmatch_by_id(_column(estimates, "id"), _column(reference, "id"))
            if len(i_est) > 0:
                method = "id"
        if method == "auto":
            if not has_sky:
                why = "the tables share no id" if has_id else "need an 'id' column in both"
                raise InputError(
                    f"cannot cross-match: {why}, and 'ra' and 'dec' are not in both tables; "
                    f"estimates have {sorted(est_names)}, reference has {sorted(ref_names)}"
                )
            method = "sky"
    elif by == "id":
        if not has_id:
            raise InputError(
                "by='id' needs an 'id' column in both tables; estimates have "
                f"{sorted(est_names)}, reference has {sorted(ref_names)}"
            )
        i_est, i_ref = crossmatch_by_id(_column(estimates, "id"), _column(reference, "id"))
    elif not has_sky:
        raise InputError(
            "by='sky' needs 'ra' and 'dec' columns in both tables; estimates have "
            f"{sorted(est_names)}, reference has {sorted(ref_names)}"
        )

    out: dict[str, np.ndarray] = {}
    if method == "sky":
        i_est, i_ref, sep = crossmatch_by_sky(
            _column(estimates, "ra", float),
            _column(estimates, "dec", float),
            _column(reference, "ra", float),
            _column(reference, "dec", float),
            radius_arcsec,
        )
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
    if method == "sky":
        out["sep_arcsec"] = sep
    out["i_est"], out["i_ref"] = i_est, i_ref
    return out


# --------------------------------------------------------------------------- statistics


def bias_scatter(diff: Any) -> dict[str, float | int]:
    """Bias, scatter and robust scatter of differences (e.g. est - ref).

    Parameters
    ----------
    diff : array, any shape
        Differences, in the label's unit (K or dex). NaN and infinite values are ignored.

    Returns
    -------
    dict
        ``n`` (int): finite values; ``bias``: their mean; ``median``; ``scatter``: standard
        deviation (ddof = 1); ``robust_sigma``: 1.4826 times the median absolute deviation
        about the median (equals the standard deviation for normal errors, but ignores
        outliers). With n < 2 the scatters are NaN; with n = 0 everything but n is NaN.
    """
    x = np.asarray(diff, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "bias": nan, "scatter": nan, "robust_sigma": nan, "median": nan}
    median = float(np.median(x))
    if n < 2:
        return {"n": n, "bias": float(x[0]), "scatter": nan, "robust_sigma": nan, "median": median}
    return {
        "n": n,
        "bias": float(x.mean()),
        "scatter": float(x.std(ddof=1)),
        "robust_sigma": float(ROBUST_SIGMA_PER_MAD * np.median(np.abs(x - median))),
        "median": median,
    }


def summary_table(
    matched: Mapping[str, Any], mask: Any = None
) -> dict[str, dict[str, float | int]]:
    """`bias_scatter` of est - ref for every label of a `crossmatch` result.

    Parameters
    ----------
    matched : dict
        With ``est_<name>`` and ``ref_<name>`` [K] for name in teff, logg, feh.
    mask : bool [K], optional
        Pairs to use (e.g. ``matched["flags"] == 0``); default all.

    Returns
    -------
    dict name -> dict(n, bias, scatter, robust_sigma, median)
        Teff in K, log g and [Fe/H] in dex.
    """
    out = {}
    for name in LABEL_NAMES:
        diff = label_difference(matched, name)
        if mask is not None:
            keep = np.asarray(mask, dtype=bool)
            if keep.shape != diff.shape:
                raise InputError(f"mask shape {keep.shape} differs from the pairs' {diff.shape}")
            diff = diff[keep]
        out[name] = bias_scatter(diff)
    return out


def label_difference(matched: Mapping[str, Any], name: str) -> np.ndarray:
    """``est_<name> - ref_<name>`` [K] of a `crossmatch` result, float64 (K or dex)."""
    missing = [k for k in (f"est_{name}", f"ref_{name}") if k not in matched]
    if missing:
        raise InputError(f"matched table lacks {missing}; have {sorted(matched)}")
    est = np.asarray(matched[f"est_{name}"], dtype=np.float64)
    ref = np.asarray(matched[f"ref_{name}"], dtype=np.float64)
    if est.shape != ref.shape or est.ndim != 1:
        raise InputError(f"est_{name} {est.shape} and ref_{name} {ref.shape} must both be [K]")
    return est - ref


def binned_stats(x: Any, diff: Any, edges: Sequence[float] = SNR_EDGES) -> list[dict[str, float]]:
    """`bias_scatter` of differences in bins of another quantity (e.g. S/N).

    Parameters
    ----------
    x : [K]
        Binning quantity (e.g. S/N). Pairs with NaN x or NaN diff are left out.
    diff : [K]
        Differences est - ref (K or dex).
    edges : [B + 1]
        Increasing bin edges; bin b holds ``edges[b] <= x < edges[b + 1]``. May start with
        -inf or end with inf. Default `SNR_EDGES`.

    Returns
    -------
    list of B dicts
        ``lo``, ``hi`` (the edges), ``n``, ``bias``, ``scatter``, ``robust_sigma``,
        ``median`` (of diff, as `bias_scatter`) and ``x_median`` (median x in the bin, NaN
        when empty; a place to draw the bin).
    """
    x = np.asarray(x, dtype=np.float64)
    diff = np.asarray(diff, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if x.shape != diff.shape or x.ndim != 1:
        raise InputError(f"x {x.shape} and diff {diff.shape} must both be [K]")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or np.isnan(edges).any():
        raise InputError(f"edges must be at least two increasing values, got {edges}")
    ok = ~np.isnan(x) & np.isfinite(diff)
    x, diff = x[ok], diff[ok]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (x >= lo) & (x < hi)
        stats = bias_scatter(diff[inside])
        x_median = float(np.median(x[inside])) if inside.any() else float("nan")
        out.append({"lo": float(lo), "hi": float(hi), **stats, "x_median": x_median})
    return out


def step_edges(values: Any, step: float) -> np.ndarray:
    """Bin edges at multiples of ``step`` covering the finite values.

    Parameters
    ----------
    values : array
        E.g. reference Teff [K] or log g [dex].
    step : float
        Bin width, in the unit of the values.

    Returns
    -------
    float64 [B + 1]
        From ``floor(min / step) * step`` to past the maximum (at least one bin; a single
        bin [0, step] when no value is finite).
    """
    if not step > 0:
        raise InputError(f"step must be > 0, got {step}")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.array([0.0, step])
    lo = math.floor(v.min() / step)
    hi = max(math.floor(v.max() / step) + 1, lo + 1)
    return np.arange(lo, hi + 1, dtype=np.float64) * step


def cell_stats(
    teff: Any,
    logg: Any,
    diff: Any,
    teff_edges: Any,
    logg_edges: Any,
    min_count: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean difference in each cell of the Teff-log g plane.

    Parameters
    ----------
    teff : [K]
        Teff [K] of each pair (usually the reference's).
    logg : [K]
        log g [dex] of each pair.
    diff : [K]
        Differences est - ref (K or dex). Pairs with any NaN are left out.
    teff_edges : [A + 1]
        Increasing Teff cell edges [K]; cell a holds ``teff_edges[a] <= teff < teff_edges[a+1]``.
    logg_edges : [B + 1]
        Increasing log g cell edges [dex], likewise.
    min_count : int
        Cells with fewer pairs get a NaN mean.

    Returns
    -------
    mean : float64 [A, B]
        Mean difference per cell (NaN where count < min_count).
    count : int64 [A, B]
        Pairs per cell.
    """
    teff = np.asarray(teff, dtype=np.float64)
    logg = np.asarray(logg, dtype=np.float64)
    diff = np.asarray(diff, dtype=np.float64)
    teff_edges = np.asarray(teff_edges, dtype=np.float64)
    logg_edges = np.asarray(logg_edges, dtype=np.float64)
    if not (teff.shape == logg.shape == diff.shape) or teff.ndim != 1:
        raise InputError(
            f"teff {teff.shape}, logg {logg.shape} and diff {diff.shape} must all be [K]"
        )
    for name, edges in (("teff_edges", teff_edges), ("logg_edges", logg_edges)):
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise InputError(f"{name} must be at least two increasing values, got {edges}")
    ok = np.isfinite(teff) & np.isfinite(logg) & np.isfinite(diff)
    a = np.searchsorted(teff_edges, teff[ok], side="right") - 1
    b = np.searchsorted(logg_edges, logg[ok], side="right") - 1
    shape = (len(teff_edges) - 1, len(logg_edges) - 1)
    inside = (a >= 0) & (a < shape[0]) & (b >= 0) & (b < shape[1])
    cell = np.ravel_multi_index((a[inside], b[inside]), shape)
    size = shape[0] * shape[1]
    count = np.bincount(cell, minlength=size).reshape(shape).astype(np.int64)
    total = np.bincount(cell, weights=diff[ok][inside], minlength=size).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count < max(min_count, 1)] = np.nan
    return mean, count


def in_range(values: Any, lo: float, hi: float) -> np.ndarray:
    """bool mask of ``lo <= values < hi`` (NaN -> False), e.g. for a [Fe/H] range [dex]."""
    v = np.asarray(values, dtype=np.float64)
    return (v >= lo) & (v < hi)


def gap_closed(scatter_raw: float, scatter_sost: float, scatter_oracle: float) -> float:
    """Fraction of the synthetic-to-observed gap that SOST closes.

    ``(raw - sost) / (raw - oracle)`` for the scatters (or any error measure) of the labels
    from the raw synthetic library, the SOST-translated library and the oracle (a library of
    the observed stars themselves). 1: SOST does as well as the oracle; 0: no better than the
    raw synthetic library; negative: worse; above 1: better than the oracle.

    Parameters
    ----------
    scatter_raw, scatter_sost, scatter_oracle : float
        In the same unit (K or dex).

    Returns
    -------
    float
        NaN when raw == oracle (no gap to close) or any input is NaN.
    """
    raw, sost, oracle = float(scatter_raw), float(scatter_sost), float(scatter_oracle)
    if raw == oracle or math.isnan(raw - sost) or math.isnan(raw - oracle):
        return float("nan")
    return (raw - sost) / (raw - oracle)


def bootstrap_interval(
    statistic: Callable[..., np.ndarray],
    *samples: Any,
    n_boot: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic of one or several paired samples.

    The rows (e.g. stars) are resampled with replacement ``n_boot`` times, the same rows for
    every sample, so that a ratio of two libraries' scatters on the same stars keeps their
    correlation.

    Parameters
    ----------
    statistic : callable
        ``statistic(*resampled)`` with each resampled array [n_boot, n] returns [n_boot]
        values (reduce along axis 1), e.g. ``lambda d: d.std(axis=1, ddof=1)``.
    samples : arrays [n]
        Paired values, in any unit (K, dex); rows with a NaN or infinite value in any
        sample are dropped from all.
    n_boot : int
        Number of resamples.
    level : float
        Central probability of the interval (0.68: the 16th and 84th percentiles).
    seed : int
        Seed of the resampling.

    Returns
    -------
    (lo, hi) : the interval, in the statistic's unit; NaNs with fewer than 2 rows.
    """
    if not samples:
        raise InputError("bootstrap_interval needs at least one sample")
    arrays = [np.asarray(s, np.float64).ravel() for s in samples]
    if len({a.size for a in arrays}) != 1:
        raise InputError(f"paired samples differ in length: {[a.size for a in arrays]}")
    if not 0.0 < level < 1.0 or n_boot < 2:
        raise InputError(f"need 0 < level < 1 and n_boot >= 2, got {level}, {n_boot}")
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    arrays = [a[keep] for a in arrays]
    n = arrays[0].size
    if n < 2:
        return float("nan"), float("nan")
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    values = np.asarray(statistic(*(a[rows] for a in arrays)), np.float64)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.nanpercentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_bias_scatter(
    diff: Any, n_boot: int = 1000, level: float = 0.68, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the bias (mean) and scatter (std, ddof 1) of differences.

    Returns ``{"bias": (lo, hi), "scatter": (lo, hi)}`` in the differences' unit.
    """
    return {
        "bias": bootstrap_interval(
            lambda d: d.mean(axis=1), diff, n_boot=n_boot, level=level, seed=seed
        ),
        "scatter": bootstrap_interval(
            lambda d: d.std(axis=1, ddof=1), diff, n_boot=n_boot, level=level, seed=seed
        ),
    }


def scatter_ratio_interval(
    diff: Any, diff_ref: Any, n_boot: int = 1000, level: float = 0.68, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of scatter(diff) / scatter(diff_ref) on the same rows (stars)."""
    return bootstrap_interval(
        lambda a, b: a.std(axis=1, ddof=1) / b.std(axis=1, ddof=1),
        diff,
        diff_ref,
        n_boot=n_boot,
        level=level,
        seed=seed,
    )


# --------------------------------------------------------------------------- reports


def _format_value(value: float | int, decimals: int) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "nan"
    return f"{value:.{decimals}f}"


def _table_rows(
    tables: Mapping[str, Mapping[str, Mapping[str, float | int]]],
) -> list[list[str]]:
    """[library, parameter [unit], n, bias, scatter, robust sigma] as strings."""
    rows = []
    for library, table in tables.items():
        for name, stats in table.items():
            title = LABEL_TITLES.get(name, name)
            unit = LABEL_UNITS.get(name)
            decimals = LABEL_DECIMALS.get(name, 3)
            cells = [str(library), f"{title} [{unit}]" if unit else title]
            for key in _STAT_KEYS:
                value = stats.get(key, float("nan"))
                cells.append(_format_value(value if key != "n" else int(value), decimals))
            rows.append(cells)
    return rows


def format_table(tables: Mapping[str, Mapping[str, Mapping[str, float | int]]]) -> str:
    """Summary tables as aligned plain text, for a terminal.

    Parameters
    ----------
    tables : dict library -> `summary_table` result
        E.g. ``{"raw synthetic": ..., "SOST": ..., "oracle": ...}``.

    Returns
    -------
    str
        One line per library and parameter: library, parameter with unit, n, bias, scatter,
        robust sigma (Teff in K, log g and [Fe/H] in dex); no trailing newline.
    """
    header = ["library", "parameter", *_STAT_TITLES]
    rows = [header, *_table_rows(tables)]
    widths = [max(len(row[j]) for row in rows) for j in range(len(header))]

    def line(row: list[str]) -> str:
        left = [row[j].ljust(widths[j]) for j in range(2)]
        right = [row[j].rjust(widths[j]) for j in range(2, len(row))]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows[1:])])


def write_report(
    path: str | os.PathLike,
    tables: Mapping[str, Mapping[str, Mapping[str, float | int]]],
    figures: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike] = (),
    title: str = "SOST evaluation",
    notes: str | Sequence[str] | None = None,
) -> Path:
    """Write a Markdown report: a table of label differences, then the figures.

    Parameters
    ----------
    path : path
        The Markdown file (e.g. ``report.md``); its folder is created.
    tables : dict library -> `summary_table` result
        Written as one table with a library column: n, bias, scatter and robust sigma of
        est - ref per parameter, Teff in K, log g and [Fe/H] in dex.
    figures : list of paths, or dict caption -> path
        Images, linked relative to the report's folder. PNG (and JPEG, SVG) files are
        embedded; other files (e.g. the PDF twins of the PNGs) are listed as plain links
        unless a PNG of the same name is also given, then they are skipped.
    title : str
        The page's heading.
    notes : str or list of str, optional
        Paragraphs written under the title (e.g. the run and the reference catalogue).

    Returns
    -------
    Path of the report.
    """
    path = Path(path)
    base = path.parent
    lines = [f"# {title}", ""]
    if notes:
        for paragraph in [notes] if isinstance(notes, str) else notes:
            lines += [str(paragraph), ""]

    lines += ["## Estimated minus reference labels", ""]
    lines += [
        "Differences est - ref of the matched stars: bias (mean), scatter (standard "
        "deviation) and robust sigma (1.4826 x median absolute deviation). Teff in K, "
        "log g and [Fe/H] in dex.",
        "",
    ]
    rows = _table_rows(tables)
    if rows:
        header = ["library", "parameter", *_STAT_TITLES]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join([":--", ":--"] + ["--:"] * len(_STAT_TITLES)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        lines.append("(no matched stars)")
    lines.append("")

    items = list(figures.items()) if isinstance(figures, Mapping) else [(None, f) for f in figures]
    if items:
        lines += ["## Figures", ""]
        images = {".png", ".jpg", ".jpeg", ".svg"}
        given = {Path(f).with_suffix("") for _, f in items if Path(f).suffix.lower() in images}
        for caption, figure in items:
            figure = Path(figure)
            is_image = figure.suffix.lower() in images
            if not is_image and figure.with_suffix("") in given:
                continue
            link = Path(os.path.relpath(figure.resolve(), base.resolve())).as_posix()
            caption = caption or figure.stem.replace("_", " ")
            lines += [f"![{caption}]({link})" if is_image else f"[{caption}]({link})", ""]

    base.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
