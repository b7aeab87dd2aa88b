"""Metrics: estimated stellar labels against reference labels.

The differences est - ref of pairs matched by `sost_jax.evaluation.crossmatch` are
summarised by their bias, scatter and robust scatter (`bias_scatter`, `summary_table`), per
S/N bin (`binned_stats`) and per cell of the Teff-log g plane (`cell_stats`), with bootstrap
intervals (`bootstrap_interval`, `bootstrap_bias_scatter`, `scatter_ratio_interval`);
`gap_closed` is the fraction of the synthetic-to-observed gap a library closes. Tables and
reports of these are `sost_jax.evaluation.report`'s.

Units everywhere: Teff [K], log g [dex, cgs], [Fe/H] [dex]. Everything is NumPy; nothing is
kept between calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError

LABEL_UNITS: dict[str, str] = {"teff": "K", "logg": "dex", "feh": "dex"}
"""Unit of each label."""

LABEL_TITLES: dict[str, str] = {"teff": "Teff", "logg": "log g", "feh": "[Fe/H]"}
"""How each label is written in tables and on axes."""

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
    """`bias_scatter` of est - ref for every label of a
    `sost_jax.evaluation.crossmatch.crossmatch` result.

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
    """``est_<name> - ref_<name>`` [K] of a `sost_jax.evaluation.crossmatch.crossmatch`
    result, float64 (K or dex)."""
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
