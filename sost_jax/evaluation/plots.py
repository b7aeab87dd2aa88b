"""Figures of the data, the codes and the libraries, from plain arrays.

(How well the method does, Figs. 7, 11, 13 and 14, is `sost_jax.evaluation.figures`'.) Each function
writes a PNG (and a PDF) and returns the paths written:

- `plot_spectra_panels`, `plot_parameter_distribution`: spectra and label distributions;
- `plot_translation_examples` (Figs. 9-10): observed, raw and translated spectra of a few
  stars with residuals; `plot_learnt_change`: mean |translated - raw| against wavelength;
- `plot_tsne`, `plot_tsne_panels` (paper Fig. 8): t-SNE embeddings of spectra or codes,
  coloured by group (e.g. synthetic / observed);
- `plot_library_coverage` (Fig. 9): the templates of a library in the Teff-log g plane over
  the reference stars;
- `plot_template_gallery` (Fig. 10): a selection of templates, offset vertically.

Units: wavelength [Å], Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from sost_jax.errors import InputError  # noqa: E402


def save_figure(fig: plt.Figure, path: str | os.PathLike, pdf: bool) -> list[Path]:
    """Write ``fig`` as ``path`` with suffix .png (and .pdf when ``pdf``), close it, and
    return the paths written."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    out = [path]
    if pdf:
        fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
        out.append(path.with_suffix(".pdf"))
    plt.close(fig)
    return out


def plot_spectra_panels(
    wave: np.ndarray,
    curves: Mapping[str, np.ndarray],
    params: np.ndarray,
    path: str | os.PathLike,
    weights: Mapping[str, np.ndarray] | None = None,
    pdf: bool = True,
) -> list[Path]:
    """Normalised spectra of several kinds at the same stellar parameters, a panel each.

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    curves : dict name -> [M, P]
        Normalised fluxes; row i of each is at ``params[i]``. Drawn in order, the first
        in grey underneath (put the noisy one first).
    params : [M, 3]
        Teff [K], log g [dex], [Fe/H] [dex] for the panel titles.
    path : path
        Output file (suffix replaced by .png / .pdf).
    weights : dict name -> [M, P], optional
        Inverse variances; pixels with 0 are not drawn.

    Returns
    -------
    list of written paths.
    """
    m = len(params)
    fig, axes = plt.subplots(m, 1, figsize=(11, 2.1 * m + 0.4), sharex=True, squeeze=False)
    colours = ["0.6", "C0", "C3", "C2", "C1"]
    for i, ax in enumerate(axes[:, 0]):
        for (name, flux), colour in zip(curves.items(), colours, strict=False):
            y = np.asarray(flux[i], dtype=float)
            if weights is not None and name in weights:
                y = np.where(np.asarray(weights[name][i]) > 0, y, np.nan)
            ax.plot(wave, y, color=colour, lw=0.6 if colour == "0.6" else 0.8, label=name)
        teff, logg, feh = params[i]
        ax.set_title(
            f"Teff {teff:.0f} K, log g {logg:.2f}, [Fe/H] {feh:+.2f}", fontsize=9, loc="left"
        )
        ax.set_ylabel("norm. flux")
        ax.set_ylim(-0.05, 1.3)
    axes[0, 0].legend(loc="lower right", fontsize=8, ncol=len(curves))
    axes[-1, 0].set_xlabel("wavelength [Å]")
    return save_figure(fig, path, pdf)


def plot_translation_examples(
    wave: np.ndarray,
    observed: np.ndarray,
    raw: np.ndarray,
    translated: np.ndarray,
    params: np.ndarray,
    titles: list[str],
    path: str | os.PathLike,
    weight: np.ndarray | None = None,
    pdf: bool = True,
) -> list[Path]:
    """Observed, raw synthetic and translated spectra of a few stars, with residuals
    (paper Figs. 9-10 at full resolution).

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    observed, raw, translated : [M, P]
        Normalised fluxes; row i of each at the stars' labels ``params[i]``.
    params : [M, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    titles : list of M str
        What each star is (e.g. "K giant").
    path : path
        Output file (suffix replaced by .png / .pdf).
    weight : [M, P], optional
        Pixels of ``observed`` with weight 0 are not drawn.

    Returns
    -------
    list of written paths.
    """
    m = len(params)
    if not (np.shape(observed) == np.shape(raw) == np.shape(translated) == (m, len(wave))):
        raise InputError("observed, raw and translated must be [M, P] with M = len(params)")
    fig, axes = plt.subplots(
        2 * m,
        1,
        figsize=(11, 2.6 * m + 0.4),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.2] * m, "hspace": 0.45},
    )
    for i in range(m):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        obs = np.asarray(observed[i], float)
        if weight is not None:
            obs = np.where(np.asarray(weight[i]) > 0, obs, np.nan)
        top.plot(wave, obs, color="k", lw=0.6, label="observed")
        top.plot(wave, raw[i], color="C0", lw=0.6, alpha=0.8, label="raw synthetic")
        top.plot(wave, translated[i], color="C3", lw=0.6, alpha=0.8, label="SOST")
        bottom.axhline(0.0, color="0.6", lw=0.5)
        bottom.plot(wave, raw[i] - obs, color="C0", lw=0.5, label="raw - observed")
        bottom.plot(wave, translated[i] - obs, color="C3", lw=0.5, label="SOST - observed")
        teff, logg, feh = params[i]
        top.set_title(
            f"{titles[i]}: Teff {teff:.0f} K, log g {logg:.2f}, [Fe/H] {feh:+.2f}",
            fontsize=9,
            loc="left",
        )
        top.set_ylabel("norm. flux")
        bottom.set_ylabel("resid.")
        bottom.set_ylim(-0.3, 0.3)
    axes[0].legend(loc="lower right", fontsize=8, ncol=3)
    axes[1].legend(loc="lower right", fontsize=7, ncol=2)
    axes[-1].set_xlabel("wavelength [Å]")
    return save_figure(fig, path, pdf)


def plot_learnt_change(
    wave: np.ndarray,
    raw: np.ndarray,
    translated: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    bands: Mapping[str, tuple[float, ...]] | None = None,
    teff_split: float = 4000.0,
    pdf: bool = True,
) -> list[Path]:
    """Mean |translated - raw| against wavelength: what the translation learnt.

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    raw, translated : [T, P]
        A library's templates before and after translation (same rows).
    labels : [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex]: the templates below and above ``teff_split``
        [K] are averaged separately.
    bands : dict name -> band heads [Å], optional
        Wavelengths marked with vertical lines (e.g. molecules the grid lacks).

    Returns
    -------
    list of written paths.
    """
    change = np.abs(np.asarray(translated, float) - np.asarray(raw, float))
    if change.shape != (len(labels), len(wave)):
        raise InputError("raw and translated must be [T, P] with T = len(labels)")
    cool = np.asarray(labels)[:, 0] < teff_split
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for rows, name, colour in (
        (cool, f"Teff < {teff_split:.0f} K", "C3"),
        (~cool, f"Teff >= {teff_split:.0f} K", "C0"),
    ):
        if rows.any():
            ax.plot(
                wave,
                change[rows].mean(axis=0),
                color=colour,
                lw=0.6,
                label=f"{name} ({rows.sum()})",
            )
    for k, (name, heads) in enumerate((bands or {}).items()):
        for j, head in enumerate(heads):
            ax.axvline(
                head, color=f"C{k + 4}", lw=0.8, ls="--", alpha=0.7, label=name if j == 0 else None
            )
    ax.set_xlim(wave.min(), wave.max())
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel("mean |SOST - raw| (norm. flux)")
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, path, pdf)


def plot_parameter_distribution(
    params: np.ndarray, path: str | os.PathLike, title: str = "", pdf: bool = True
) -> list[Path]:
    """Kiel diagram (Teff vs log g, coloured by [Fe/H]) of a set of stars.

    Parameters
    ----------
    params : [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(params[:, 0], params[:, 1], c=params[:, 2], s=3, cmap="viridis", alpha=0.7)
    fig.colorbar(sc, ax=ax, label="[Fe/H] [dex]")
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff [K]")
    ax.set_ylabel("log g [dex]")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path, pdf)


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
    return save_figure(fig, path, pdf)


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
    return save_figure(fig, path, pdf)


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
    return save_figure(fig, path, pdf)


# --------------------------------------------------------------------------- Fig. 11
