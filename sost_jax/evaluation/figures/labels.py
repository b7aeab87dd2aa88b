"""Figures of estimated against reference labels: how well the method does.

Each function writes a PNG (and a PDF) and returns the paths written:

- `plot_estimates_vs_reference` (paper Fig. 11): estimated against reference labels, one row
  per library, with bias and scatter;
- `plot_differences_vs_snr` (Fig. 13): est - ref against S/N with binned bias and scatter;
- `plot_bias_plane` (Fig. 14): mean est - ref in the Teff-log g plane per [Fe/H] range;
- `plot_pulls`: pull distributions (estimate - truth) / error per S/N bin.

The pairs are `sost_jax.evaluation.crossmatch.crossmatch` results; the statistics are
`sost_jax.evaluation.metrics`'. Units: Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.gridspec import SubplotSpec  # noqa: E402

from sost_jax.constants import LABEL_NAMES  # noqa: E402
from sost_jax.errors import InputError  # noqa: E402
from sost_jax.evaluation.figures.save import save_figure  # noqa: E402
from sost_jax.evaluation.metrics import (
    FEH_RANGES,
    LABEL_TITLES,
    LABEL_UNITS,
    SNR_EDGES,
    bias_scatter,
    binned_stats,
    cell_stats,
    in_range,
    label_difference,
    step_edges,
)

_TEXT_BOX = {"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.85}


def _axis_label(name: str, prefix: str = "") -> str:
    """E.g. ``"reference Teff [K]"``."""
    text = f"{prefix} {LABEL_TITLES[name]}".strip()
    return f"{text} [{LABEL_UNITS[name]}]"


def _stats_text(name: str, diff: np.ndarray) -> str:
    """Bias ± scatter (and n) of est - ref in the label's unit, for a panel."""
    s = bias_scatter(diff)
    unit = LABEL_UNITS[name]
    if name == "teff":
        body = f"bias {s['bias']:+.0f} ± {s['scatter']:.0f} {unit}"
        robust = f"σ_rob {s['robust_sigma']:.0f} {unit}"
    else:
        body = f"bias {s['bias']:+.3f} ± {s['scatter']:.3f} {unit}"
        robust = f"σ_rob {s['robust_sigma']:.3f} {unit}"
    return f"{body}\n{robust}\nn = {s['n']}"


def _feh_range_label(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return "all [Fe/H]"
    if math.isinf(lo):
        return f"[Fe/H] < {hi:+.1f}"
    if math.isinf(hi):
        return f"[Fe/H] ≥ {lo:+.1f}"
    return f"{lo:+.1f} ≤ [Fe/H] < {hi:+.1f}"


def _point_density(x: np.ndarray, y: np.ndarray, bins: int = 40) -> np.ndarray:
    """Relative density (0-1] at each point, from a 2-D histogram."""
    if len(x) == 0:
        return np.zeros(0)
    span_x = (x.min(), x.max() if x.max() > x.min() else x.min() + 1.0)
    span_y = (y.min(), y.max() if y.max() > y.min() else y.min() + 1.0)
    hist, ex, ey = np.histogram2d(x, y, bins=bins, range=(span_x, span_y))
    ix = np.clip(np.searchsorted(ex, x, side="right") - 1, 0, bins - 1)
    iy = np.clip(np.searchsorted(ey, y, side="right") - 1, 0, bins - 1)
    density = hist[ix, iy]
    return density / density.max()


# --------------------------------------------------------------------------- Fig. 11


def _one_to_one_limits(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Common axis limits of reference ``x`` and estimated ``y`` [N], N >= 1 (a label's
    unit): the 0.5-99.5 percentiles of both, padded by 4 per cent (by 1 when they agree).

    The bulk fills the panel: a few wild estimates would squeeze it.
    """
    lo = min(np.percentile(x, 0.5), np.percentile(y, 0.5))
    hi = max(np.percentile(x, 99.5), np.percentile(y, 99.5))
    pad = 0.04 * (hi - lo) if hi > lo else 1.0
    return (lo - pad, hi + pad)


def _density_scatter(
    ax: Axes, x: np.ndarray, y: np.ndarray, density: np.ndarray, order: np.ndarray, size: float
) -> PathCollection:
    """Points ``(x, y)`` [N] in ``order`` (densest last), coloured by ``density`` (0-1]."""
    return ax.scatter(
        x[order],
        y[order],
        c=density[order],
        s=size,
        cmap="viridis",
        vmin=0,
        vmax=1,
        lw=0,
        rasterized=True,
    )


def _draw_estimates(
    ax: Axes,
    library: str,
    name: str,
    ref: np.ndarray,
    est: np.ndarray,
    diff: np.ndarray,
    density: np.ndarray,
    order: np.ndarray,
) -> PathCollection:
    """One panel of Fig. 11: estimated against reference ``name`` [N] (K or dex), the
    one-to-one line and the bias, scatter and n of ``diff`` = est - ref; returns the points.
    """
    scatter = _density_scatter(ax, ref, est, density, order, 3)
    if len(ref):
        lim = _one_to_one_limits(ref, est)
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
    ax.text(
        0.03,
        0.97,
        _stats_text(name, diff),
        transform=ax.transAxes,
        va="top",
        fontsize=7,
        bbox=_TEXT_BOX,
    )
    ax.set_title(f"{library}: {LABEL_TITLES[name]}", fontsize=9)
    ax.set_ylabel(_axis_label(name, "estimated"), fontsize=8)
    ax.tick_params(labelsize=7)
    return scatter


def _draw_differences(
    rax: Axes,
    name: str,
    ref: np.ndarray,
    diff: np.ndarray,
    density: np.ndarray,
    order: np.ndarray,
) -> None:
    """The small panel under one of Fig. 11: est - ref against reference ``name`` [N]
    (K or dex), its y range +- 1.1 times the 99th percentile of |est - ref|."""
    _density_scatter(rax, ref, diff, density, order, 2)
    rax.axhline(0.0, color="k", ls="--", lw=0.8)
    if len(diff):
        span = float(np.nanpercentile(np.abs(diff), 99)) * 1.1
        if span > 0:
            rax.set_ylim(-span, span)
    rax.set_xlabel(_axis_label(name, "reference"), fontsize=8)
    rax.set_ylabel(f"Δ [{LABEL_UNITS[name]}]", fontsize=8)
    rax.tick_params(labelsize=7)


def _label_panel(
    fig: Figure,
    cell: SubplotSpec,
    library: str,
    name: str,
    matched: Mapping[str, np.ndarray],
    residual_axes: bool,
) -> PathCollection:
    """Fig. 11's panel of one library and label in ``cell``: the pairs with finite est and
    ref, with est - ref underneath when ``residual_axes``; returns the points."""
    diff = label_difference(matched, name)
    ref = np.asarray(matched[f"ref_{name}"], dtype=np.float64)
    est = np.asarray(matched[f"est_{name}"], dtype=np.float64)
    ok = np.isfinite(ref) & np.isfinite(est)
    x, y, d = ref[ok], est[ok], diff[ok]
    if residual_axes:
        inner = cell.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        rax = fig.add_subplot(inner[1], sharex=ax)
    else:
        ax, rax = fig.add_subplot(cell), None
    density = _point_density(x, y)
    order = np.argsort(density, kind="stable")
    scatter = _draw_estimates(ax, library, name, x, y, d, density, order)
    if rax is None:
        ax.set_xlabel(_axis_label(name, "reference"), fontsize=8)
    else:
        ax.tick_params(labelbottom=False)
        _draw_differences(rax, name, x, d, density, order)
    return scatter


def plot_estimates_vs_reference(
    rows: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    residual_axes: bool = True,
    title: str = "",
    pdf: bool = True,
) -> list[Path]:
    """Estimated against reference labels, one row per library (paper Fig. 11).

    Parameters
    ----------
    rows : dict library -> `sost_jax.evaluation.crossmatch.crossmatch` result
        E.g. ``{"raw synthetic": ..., "SOST": ..., "oracle": ...}``, each with
        ``est_<name>``, ``ref_<name>`` for name in teff [K], logg [dex], feh [dex].
    path : path
        Output file (suffix replaced by .png / .pdf).
    residual_axes : bool
        Add a small panel of est - ref against ref under each panel.
    title : str
        Figure title.

    Returns
    -------
    list of written paths.

    Points are coloured by their relative density (from a 2-D histogram, per panel); the
    dashed line is one-to-one; the text gives bias ± scatter, the robust sigma and n.
    """
    if not rows:
        raise InputError("no libraries to draw")
    nrow, ncol = len(rows), len(LABEL_NAMES)
    height = (4.4 if residual_axes else 3.6) * nrow
    fig = plt.figure(figsize=(3.8 * ncol + 0.8, height))
    # a top margin of 0.7 inch for the title, whatever the number of rows
    outer = fig.add_gridspec(nrow, ncol, hspace=0.38, wspace=0.32, top=1.0 - 0.7 / height)
    scatter = None
    for r, (library, matched) in enumerate(rows.items()):
        for c, name in enumerate(LABEL_NAMES):
            scatter = _label_panel(fig, outer[r, c], library, name, matched, residual_axes)
    fig.colorbar(scatter, ax=fig.axes, shrink=0.6, pad=0.02, label="relative point density")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, pdf)


# --------------------------------------------------------------------------- Fig. 13


def plot_differences_vs_snr(
    rows: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    edges: Sequence[float] = SNR_EDGES,
    log_snr: bool = False,
    title: str = "Differences against S/N",
    pdf: bool = True,
) -> list[Path]:
    """est - ref against S/N, with the bias and scatter in S/N bins (paper Fig. 13).

    Parameters
    ----------
    rows : dict library -> `sost_jax.evaluation.crossmatch.crossmatch` result with ``snr``
        One colour per library.
    path : path
        Output file (suffix replaced by .png / .pdf).
    edges : [B + 1]
        S/N bin edges (`sost_jax.evaluation.metrics.binned_stats`); default `SNR_EDGES`.
    log_snr : bool
        Logarithmic S/N axis (spreads the many low-S/N stars of a survey).
    title : str
        Figure title.

    Returns
    -------
    list of written paths.

    Points are the pairs (light); markers are the bias (mean) of each bin, drawn at the bin's
    median S/N (shifted slightly per library), with error bars of ± the scatter.
    """
    if not rows:
        raise InputError("no libraries to draw")
    for library, matched in rows.items():
        if "snr" not in matched:
            raise InputError(f"rows[{library!r}] has no 'snr' column")
    fig, axes = plt.subplots(len(LABEL_NAMES), 1, figsize=(8, 8.5), sharex=True)
    all_snr = np.concatenate([np.asarray(m["snr"], dtype=np.float64) for m in rows.values()])
    all_snr = all_snr[np.isfinite(all_snr)]
    x_max = float(np.percentile(all_snr, 99.5)) * 1.05 if len(all_snr) else 1.0
    n_lib = len(rows)
    for ax, name in zip(axes, LABEL_NAMES, strict=True):
        spans = []
        for i, (library, matched) in enumerate(rows.items()):
            colour = f"C{i}"
            snr = np.asarray(matched["snr"], dtype=np.float64)
            diff = label_difference(matched, name)
            ok = np.isfinite(snr) & np.isfinite(diff)
            ax.scatter(snr[ok], diff[ok], s=2, color=colour, alpha=0.15, lw=0, rasterized=True)
            if ok.any():
                spans.append(np.percentile(np.abs(diff[ok]), 98))
            stats = binned_stats(snr, diff, edges)
            xb = np.array([s["x_median"] for s in stats])
            shift = 1.0 + 0.03 * (i - (n_lib - 1) / 2)
            ax.errorbar(
                xb * shift,
                [s["bias"] for s in stats],
                yerr=[0.0 if np.isnan(s["scatter"]) else s["scatter"] for s in stats],
                fmt="o",
                ms=4,
                capsize=3,
                color=colour,
                mec="k",
                mew=0.4,
                label=library,
            )
        ax.axhline(0.0, color="k", lw=0.7)
        if spans and max(spans) > 0:
            ax.set_ylim(-1.2 * max(spans), 1.2 * max(spans))
        ax.set_ylabel(f"Δ {LABEL_TITLES[name]} (est − ref) [{LABEL_UNITS[name]}]", fontsize=9)
    for edge in np.asarray(edges, dtype=np.float64):
        if np.isfinite(edge) and 0 < edge < x_max:
            for ax in axes:
                ax.axvline(edge, color="0.85", lw=0.6, zorder=0)
    axes[0].legend(
        fontsize=8, loc="upper right", title="bias ± scatter per S/N bin", title_fontsize=8
    )
    axes[-1].set_xlabel("S/N")
    if log_snr:
        positive = all_snr[all_snr > 0]
        axes[-1].set_xscale("log")
        axes[-1].set_xlim(0.9 * positive.min() if len(positive) else 1.0, max(x_max, 2.0))
    else:
        axes[-1].set_xlim(0, x_max)
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, pdf)


# --------------------------------------------------------------------------- Fig. 14


def plot_bias_plane(
    matched: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    feh_ranges: Sequence[tuple[float, float]] = FEH_RANGES,
    teff_step: float = 250.0,
    logg_step: float = 0.5,
    min_count: int = 3,
    title: str = "Mean difference (est − ref) in the Teff-log g plane",
    pdf: bool = True,
) -> list[Path]:
    """Mean est - ref in cells of the reference Teff-log g plane, per [Fe/H] range (Fig. 14).

    Parameters
    ----------
    matched : `sost_jax.evaluation.crossmatch.crossmatch` result
        ``est_<name>``, ``ref_<name>`` for teff [K], logg [dex], feh [dex]; the reference
        labels place each star and choose its [Fe/H] range.
    path : path
        Output file (suffix replaced by .png / .pdf).
    feh_ranges : list of (lo, hi) [dex]
        One column per range, ``lo <= [Fe/H] < hi``; default `FEH_RANGES`.
    teff_step : float
        Cell width in Teff [K].
    logg_step : float
        Cell height in log g [dex].
    min_count : int
        Cells with fewer stars are left blank.
    title : str
        Figure title.

    Returns
    -------
    list of written paths.

    One row per parameter, with a diverging colour scale centred on 0 and shared along the
    row; its limits are ± the 95th percentile of the row's |mean| (cells beyond saturate).
    """
    if not feh_ranges:
        raise InputError("no [Fe/H] ranges")
    ref_teff = np.asarray(matched["ref_teff"], dtype=np.float64)
    ref_logg = np.asarray(matched["ref_logg"], dtype=np.float64)
    ref_feh = np.asarray(matched["ref_feh"], dtype=np.float64)
    teff_edges = step_edges(ref_teff, teff_step)
    logg_edges = step_edges(ref_logg, logg_step)
    ncol = len(feh_ranges)
    fig, axes = plt.subplots(
        len(LABEL_NAMES),
        ncol,
        figsize=(3.3 * ncol + 1.2, 3.0 * len(LABEL_NAMES)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for r, name in enumerate(LABEL_NAMES):
        diff = label_difference(matched, name)
        maps = []
        for lo, hi in feh_ranges:
            sel = in_range(ref_feh, lo, hi)
            mean, count = cell_stats(
                ref_teff[sel], ref_logg[sel], diff[sel], teff_edges, logg_edges, min_count
            )
            maps.append((mean, int(count.sum())))
        finite = np.concatenate([np.abs(m[np.isfinite(m)]) for m, _ in maps])
        # A robust colour limit: one cell of a few outliers would wash out the others.
        vmax = float(np.percentile(finite, 95)) if len(finite) else 0.0
        vmax = vmax if vmax > 0 else 1.0
        extend = "both" if len(finite) and finite.max() > vmax else "neither"
        image = None
        for c, ((lo, hi), (mean, n)) in enumerate(zip(feh_ranges, maps, strict=True)):
            ax = axes[r, c]
            image = ax.pcolormesh(
                teff_edges, logg_edges, mean.T, cmap="RdBu_r", vmin=-vmax, vmax=vmax
            )
            ax.set_facecolor("0.93")
            ax.text(0.03, 0.04, f"n = {n}", transform=ax.transAxes, fontsize=7, bbox=_TEXT_BOX)
            if r == 0:
                ax.set_title(_feh_range_label(lo, hi), fontsize=9)
            if c == 0:
                ax.set_ylabel("reference log g [dex]", fontsize=8)
            if r == len(LABEL_NAMES) - 1:
                ax.set_xlabel("reference Teff [K]", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.colorbar(
            image,
            ax=list(axes[r]),
            pad=0.01,
            extend=extend,
            label=f"mean Δ {LABEL_TITLES[name]} [{LABEL_UNITS[name]}]",
        )
    axes[0, 0].invert_xaxis()
    axes[0, 0].invert_yaxis()
    fig.suptitle(
        f"{title}\n(cells of {teff_step:g} K × {logg_step:g} dex; grey: fewer than {min_count} "
        "stars)",
        fontsize=10,
    )
    return save_figure(fig, path, pdf)


# --------------------------------------------------------------------------- pulls


def plot_pulls(
    pulls: Mapping[str, np.ndarray],
    snr: np.ndarray,
    path: str | os.PathLike,
    snr_bins: Sequence[float] = (0.0, 20.0, 40.0, 80.0, np.inf),
    title: str = "",
    pdf: bool = True,
) -> list[Path]:
    """Pull distributions (estimate - truth) / error per label, one curve per S/N bin, with
    the unit normal a calibrated error gives.

    Parameters
    ----------
    pulls : dict label -> [N]
        Pulls of each label ("teff", "logg", "feh", "rv", ...); NaN ignored.
    snr : [N]
        S/N of each star, binned by ``snr_bins``.
    """
    snr = np.asarray(snr, np.float64)
    fig, axes = plt.subplots(1, len(pulls), figsize=(4.2 * len(pulls), 3.4), squeeze=False)
    x = np.linspace(-5, 5, 201)
    edges = np.linspace(-5, 5, 41)
    for ax, (name, pull) in zip(axes[0], pulls.items(), strict=True):
        pull = np.asarray(pull, np.float64)
        if pull.shape != snr.shape:
            raise InputError(f"pulls[{name!r}] has shape {pull.shape}, snr {snr.shape}")
        for lo, hi in zip(snr_bins[:-1], snr_bins[1:], strict=True):
            sel = (snr >= lo) & (snr < hi) & np.isfinite(pull)
            if sel.sum() < 10:
                continue
            label = f"S/N {lo:g}-{hi:g}: σ = {np.std(pull[sel]):.2f} ({sel.sum()})"
            ax.hist(np.clip(pull[sel], -5, 5), edges, density=True, histtype="step", label=label)
        ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k--", lw=0.8, label="N(0, 1)")
        ax.set_xlabel(f"pull of {LABEL_TITLES.get(name, name)}")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, pdf)
