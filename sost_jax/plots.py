"""Figures. Each function takes plain arrays, writes PNG (and PDF) files, returns the paths."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike, pdf: bool) -> list[Path]:
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
    return _save(fig, path, pdf)


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
    return _save(fig, path, pdf)
