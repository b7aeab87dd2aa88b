"""The paper's evaluation figures, from plain arrays.

Each function writes a PNG (and a PDF) and returns the paths written:

- `plot_residuals` (paper Fig. 7): |relative residual| against wavelength, median and
  16-84 percentile band, per kind of reconstruction.
- `plot_tsne`, `plot_tsne_panels` (Fig. 8): t-SNE embeddings of spectra or codes, coloured by
  group (e.g. synthetic / observed).
- `plot_library_coverage` (Fig. 9): the templates of a library in the Teff-log g plane over
  the reference stars.
- `plot_template_gallery` (Fig. 10): a selection of templates, offset vertically.
- `plot_estimates_vs_reference` (Fig. 11): estimated against reference labels, one row per
  library, with bias and scatter.
- `plot_differences_vs_snr` (Fig. 13): est - ref against S/N with binned bias and scatter.
- `plot_bias_plane` (Fig. 14): mean est - ref in the Teff-log g plane per [Fe/H] range.

Units: wavelength [Å], Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from sost_jax.constants import LABEL_NAMES  # noqa: E402
from sost_jax.errors import InputError
from sost_jax.evaluate import (  # noqa: E402
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
from sost_jax.plots import _save  # noqa: E402

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


# --------------------------------------------------------------------------- Fig. 7


def plot_residuals(
    wave: np.ndarray,
    residuals: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    window: tuple[float, float] | None = (4000.0, 5500.0),
    title: str = "",
    pdf: bool = True,
) -> list[Path]:
    """Absolute relative residuals against wavelength (paper Fig. 7).

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    residuals : dict name -> [N, P]
        Relative residuals (e.g. (reconstruction - input) / input, dimensionless) of N
        spectra, per curve (e.g. "reconstruction synthetic", "cycle observed"). NaN pixels
        are ignored.
    path : path
        Output file (suffix replaced by .png / .pdf).
    window : (lo, hi) [Å], optional
        Wavelength range drawn; None: all.
    title : str
        Figure title.

    Returns
    -------
    list of written paths.

    Each curve is the median |residual| over the spectra with its 16-84 percentile band, in
    per cent; the legend gives the mean |residual| over spectra and pixels of the window.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise InputError(f"wave must be [P], got shape {wave.shape}")
    if window is None:
        keep = np.isfinite(wave)
    else:
        keep = (wave >= window[0]) & (wave <= window[1])
    if not keep.any():
        raise InputError(f"no wavelength inside the window {window} Å")
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, (name, res) in enumerate(residuals.items()):
        res = np.asarray(res, dtype=np.float64)
        if res.ndim == 1:
            res = res[None]
        if res.ndim != 2 or res.shape[1] != len(wave):
            raise InputError(f"residuals[{name!r}] must be [N, {len(wave)}], got {res.shape}")
        a = 100.0 * np.abs(res[:, keep])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pixels masked in every spectrum
            lo, med, hi = np.nanpercentile(a, [16, 50, 84], axis=0)
            mean = np.nanmean(a)
        colour = f"C{i}"
        ax.fill_between(wave[keep], lo, hi, color=colour, alpha=0.2, lw=0)
        ax.plot(wave[keep], med, color=colour, lw=0.8, label=f"{name} (mean {mean:.2f}%)")
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel("|relative residual| [%]")
    ax.set_ylim(bottom=0)
    ax.set_xlim(wave[keep].min(), wave[keep].max())
    ax.legend(loc="upper right", fontsize=8, title="median, 16-84% band", title_fontsize=8)
    ax.set_title(title or "Relative residuals against wavelength", fontsize=10)
    return _save(fig, path, pdf)


# --------------------------------------------------------------------------- Fig. 8


def tsne_embedding(
    groups: Mapping[str, np.ndarray],
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    pca_dims: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D t-SNE embedding of several groups of vectors together.

    Parameters
    ----------
    groups : dict name -> [N_g, D]
        E.g. synthetic and observed spectra (D = P pixels) or their codes; all with the same
        D. Rows with a non-finite value are dropped.
    seed : int
        Seeds the subsampling and t-SNE.
    perplexity : float
        t-SNE perplexity; lowered to (points - 1) / 3 when there are few points.
    max_points : int
        Each group is subsampled (without replacement) to at most this many rows.
    pca_dims : int
        Vectors longer than this are first projected on their leading principal components.

    Returns
    -------
    xy : float64 [M, 2]
        Embedded points.
    group : int64 [M]
        Index of each point's group in ``groups``' order.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    parts, index = [], []
    dims = set()
    for g, (name, x) in enumerate(groups.items()):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(f"group {name!r} must be [N, D], got shape {x.shape}")
        dims.add(x.shape[1])
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) > max_points:
            x = x[np.sort(rng.choice(len(x), max_points, replace=False))]
        parts.append(x)
        index.append(np.full(len(x), g, np.int64))
    if len(dims) > 1:
        raise InputError(f"all groups need the same vector length D, got {sorted(dims)}")
    x = np.concatenate(parts) if parts else np.zeros((0, 0))
    if len(x) < 4:
        raise InputError(f"t-SNE needs at least 4 finite points, got {len(x)}")
    if x.shape[1] > pca_dims:
        x = PCA(n_components=min(pca_dims, len(x)), random_state=seed).fit_transform(x)
    perplexity = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    )
    return tsne.fit_transform(x).astype(np.float64), np.concatenate(index)


def plot_tsne_panels(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    title: str = "",
    pdf: bool = True,
) -> list[Path]:
    """t-SNE embeddings side by side (paper Fig. 8), each panel with its own groups.

    Parameters
    ----------
    panels : dict panel title -> dict group name -> [N_g, D]
        E.g. ``{"spectra before": {"synthetic": ..., "observed": ...}, "content codes":
        {...}, "style codes": {...}}``; each panel is embedded on its own (`tsne_embedding`).
        A group name has the same colour in every panel.
    path : path
        Output file (suffix replaced by .png / .pdf).
    seed, perplexity, max_points
        As `tsne_embedding`.
    title : str
        Figure title.

    Returns
    -------
    list of written paths.
    """
    if not panels:
        raise InputError("no panels to draw")
    names: list[str] = []
    for groups in panels.values():
        names += [g for g in groups if g not in names]
    colours = {g: f"C{i % 10}" for i, g in enumerate(names)}
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, (panel, groups) in zip(axes[0], panels.items(), strict=True):
        xy, group = tsne_embedding(groups, seed, perplexity, max_points)
        for g, name in enumerate(groups):
            sel = group == g
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=4,
                alpha=0.6,
                color=colours[name],
                label=f"{name} ({sel.sum()})",
                rasterized=True,
            )
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, markerscale=3, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path, pdf)


def plot_tsne(
    groups: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    title: str = "t-SNE embedding",
    pdf: bool = True,
) -> list[Path]:
    """One t-SNE embedding of all groups together, coloured by group (paper Fig. 8).

    Parameters
    ----------
    groups : dict name -> [N_g, D]
        E.g. ``{"synthetic": [N, P] spectra, "observed": [M, P] spectra}``.
    path : path
        Output file (suffix replaced by .png / .pdf).
    seed, perplexity, max_points
        As `tsne_embedding`.
    title : str
        Panel title.

    Returns
    -------
    list of written paths.
    """
    return plot_tsne_panels({title: groups}, path, seed, perplexity, max_points, "", pdf)


# --------------------------------------------------------------------------- Fig. 9


def plot_library_coverage(
    library_labels: np.ndarray,
    reference_labels: np.ndarray,
    path: str | os.PathLike,
    title: str = "Library coverage",
    pdf: bool = True,
) -> list[Path]:
    """Templates of a library in the Teff-log g plane over the reference stars (paper Fig. 9).

    Parameters
    ----------
    library_labels : [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of the templates; coloured by [Fe/H].
    reference_labels : [M, 3]
        The same for the reference catalogue; drawn in grey (points, or a log-density map
        above 5000 stars).
    path : path
        Output file (suffix replaced by .png / .pdf).
    title : str
        Panel title.

    Returns
    -------
    list of written paths.
    """
    lib = _labels(library_labels, "library_labels")
    ref = _labels(reference_labels, "reference_labels")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    if len(ref) > 5000:
        ax.hexbin(ref[:, 0], ref[:, 1], gridsize=70, bins="log", mincnt=1, cmap="Greys")
        ax.scatter([], [], s=10, marker="h", color="0.6", label=f"reference stars ({len(ref)})")
    elif len(ref):
        ax.scatter(
            ref[:, 0],
            ref[:, 1],
            s=2,
            color="0.65",
            alpha=0.5,
            lw=0,
            label=f"reference stars ({len(ref)})",
            rasterized=True,
        )
    sc = ax.scatter(
        lib[:, 0],
        lib[:, 1],
        c=lib[:, 2],
        s=14,
        cmap="viridis",
        edgecolors="k",
        linewidths=0.2,
        label=f"templates ({len(lib)})",
    )
    fig.colorbar(sc, ax=ax, label="template [Fe/H] [dex]")
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff [K]")
    ax.set_ylabel("log g [dex]")
    ax.legend(loc="upper left", fontsize=8, markerscale=2)
    ax.set_title(title, fontsize=10)
    return _save(fig, path, pdf)


def _labels(labels: np.ndarray, name: str) -> np.ndarray:
    """[N, 3] float64 labels without rows holding a NaN in Teff or log g."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[1] != 3:
        raise InputError(f"{name} must be [N, 3] (Teff, log g, [Fe/H]), got {labels.shape}")
    return labels[np.isfinite(labels[:, :2]).all(axis=1)]


# --------------------------------------------------------------------------- Fig. 10


def plot_template_gallery(
    wave: np.ndarray,
    flux: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    n: int = 12,
    offset: float = 0.5,
    title: str = "Templates in order of Teff",
    pdf: bool = True,
) -> list[Path]:
    """A selection of templates, offset vertically and labelled (paper Fig. 10).

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    flux : [T, P]
        Normalised template fluxes.
    labels : [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of each template.
    path : path
        Output file (suffix replaced by .png / .pdf).
    n : int
        Templates drawn, spread evenly over the library in Teff order, coolest at the bottom.
    offset : float
        Vertical step between spectra (flux units).
    title : str
        Figure title.

    Returns
    -------
    list of written paths.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if flux.ndim != 2 or flux.shape[1] != len(wave) or labels.shape != (len(flux), 3):
        raise InputError(
            f"need wave [P], flux [T, P] and labels [T, 3]; got {wave.shape}, {flux.shape}, "
            f"{labels.shape}"
        )
    if n < 1 or len(flux) == 0:
        raise InputError(f"nothing to draw: n = {n}, {len(flux)} templates")
    order = np.argsort(labels[:, 0], kind="stable")
    steps = np.round(np.linspace(0, len(order) - 1, min(n, len(order)))).astype(int)
    pick = order[np.unique(steps)]
    cmap = plt.get_cmap("coolwarm_r")
    norm = Normalize(labels[pick, 0].min(), max(labels[pick, 0].max(), labels[pick, 0].min() + 1))
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.55 * len(pick)))
    for k, t in enumerate(pick):
        teff, logg, feh = labels[t]
        ax.plot(wave, flux[t] + k * offset, color=cmap(norm(teff)), lw=0.6)
        ax.text(
            1.005,
            np.nanmedian(flux[t][-max(len(wave) // 20, 1) :]) + k * offset,
            f"{teff:.0f} K, {logg:.2f}, {feh:+.2f}",
            transform=ax.get_yaxis_transform(),
            fontsize=7,
            va="center",
        )
    ax.set_xlim(wave.min(), wave.max())
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel(f"normalised flux + offset ({offset:g} per template)")
    ax.set_title(f"{title}  (labels: Teff, log g [dex], [Fe/H] [dex])", fontsize=10)
    return _save(fig, path, pdf)


# --------------------------------------------------------------------------- Fig. 11


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
    rows : dict library -> `sost_jax.evaluate.crossmatch` result
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
    fig = plt.figure(figsize=(3.8 * ncol + 0.8, (4.4 if residual_axes else 3.6) * nrow))
    outer = fig.add_gridspec(nrow, ncol, hspace=0.38, wspace=0.32)
    scatter = None
    for r, (library, matched) in enumerate(rows.items()):
        for c, name in enumerate(LABEL_NAMES):
            diff = label_difference(matched, name)
            ref = np.asarray(matched[f"ref_{name}"], dtype=np.float64)
            est = np.asarray(matched[f"est_{name}"], dtype=np.float64)
            ok = np.isfinite(ref) & np.isfinite(est)
            x, y, d = ref[ok], est[ok], diff[ok]
            if residual_axes:
                inner = outer[r, c].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
                ax = fig.add_subplot(inner[0])
                rax = fig.add_subplot(inner[1], sharex=ax)
            else:
                ax, rax = fig.add_subplot(outer[r, c]), None
            density = _point_density(x, y)
            order = np.argsort(density, kind="stable")
            scatter = ax.scatter(
                x[order],
                y[order],
                c=density[order],
                s=3,
                cmap="viridis",
                vmin=0,
                vmax=1,
                lw=0,
                rasterized=True,
            )
            if len(x):
                # The bulk fills the panel: a few wild estimates would squeeze it.
                lo = min(np.percentile(x, 0.5), np.percentile(y, 0.5))
                hi = max(np.percentile(x, 99.5), np.percentile(y, 99.5))
                pad = 0.04 * (hi - lo) if hi > lo else 1.0
                lim = (lo - pad, hi + pad)
                ax.plot(lim, lim, "k--", lw=0.8)
                ax.set_xlim(lim)
                ax.set_ylim(lim)
            ax.text(
                0.03,
                0.97,
                _stats_text(name, d),
                transform=ax.transAxes,
                va="top",
                fontsize=7,
                bbox=_TEXT_BOX,
            )
            ax.set_title(f"{library}: {LABEL_TITLES[name]}", fontsize=9)
            ax.set_ylabel(_axis_label(name, "estimated"), fontsize=8)
            ax.tick_params(labelsize=7)
            if rax is None:
                ax.set_xlabel(_axis_label(name, "reference"), fontsize=8)
                continue
            ax.tick_params(labelbottom=False)
            rax.scatter(
                x[order],
                d[order],
                c=density[order],
                s=2,
                cmap="viridis",
                vmin=0,
                vmax=1,
                lw=0,
                rasterized=True,
            )
            rax.axhline(0.0, color="k", ls="--", lw=0.8)
            if len(d):
                span = float(np.nanpercentile(np.abs(d), 99)) * 1.1
                if span > 0:
                    rax.set_ylim(-span, span)
            rax.set_xlabel(_axis_label(name, "reference"), fontsize=8)
            rax.set_ylabel(f"Δ [{LABEL_UNITS[name]}]", fontsize=8)
            rax.tick_params(labelsize=7)
    fig.colorbar(scatter, ax=fig.axes, shrink=0.6, pad=0.02, label="relative point density")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path, pdf)


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
    rows : dict library -> `sost_jax.evaluate.crossmatch` result with ``snr``
        One colour per library.
    path : path
        Output file (suffix replaced by .png / .pdf).
    edges : [B + 1]
        S/N bin edges (`sost_jax.evaluate.binned_stats`); default `SNR_EDGES`.
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
    return _save(fig, path, pdf)


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
    matched : `sost_jax.evaluate.crossmatch` result
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
    return _save(fig, path, pdf)
