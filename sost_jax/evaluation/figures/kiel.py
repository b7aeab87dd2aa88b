"""Kiel diagrams: stars and templates in the Teff-log g plane.

- `plot_library_coverage` (paper Fig. 9): the templates of a library over the reference
  stars;
- `plot_parameter_distribution`: the labels of a set of stars, coloured by [Fe/H].

Units: Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sost_jax.errors import InputError  # noqa: E402
from sost_jax.evaluation.figures.save import save_figure  # noqa: E402


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
