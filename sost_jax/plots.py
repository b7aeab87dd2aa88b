"""Figures. Each function takes plain arrays, writes PNG (and PDF) files, returns the paths."""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def plot_domain_pairs(
    wave: np.ndarray,
    synthetic: np.ndarray,
    observed: np.ndarray,
    params: np.ndarray,
    path: str | os.PathLike,
    weight: np.ndarray | None = None,
    labels: Sequence[str] = ("synthetic", "observed"),
    pdf: bool = True,
) -> list[Path]:
    """Normalised spectra of two domains at the same stellar parameters, one panel each.

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    synthetic, observed : [M, P]
        Normalised fluxes of the two domains, row i at parameters ``params[i]``.
    params : [M, 3]
        Teff [K], log g [dex], [Fe/H] [dex] for the panel titles.
    path : path
        Output file (suffix replaced by .png / .pdf).
    weight : [M, P], optional
        Inverse variance of ``observed``; pixels with 0 are not drawn.
    labels : two str
        Legend names of the two domains.

    Returns
    -------
    list of written paths.
    """
    m = len(params)
    fig, axes = plt.subplots(m, 1, figsize=(11, 2.1 * m + 0.4), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        obs = np.asarray(observed[i], dtype=float)
        if weight is not None:
            obs = np.where(np.asarray(weight[i]) > 0, obs, np.nan)
        ax.plot(wave, obs, color="0.55", lw=0.6, label=labels[1])
        ax.plot(wave, synthetic[i], color="C3", lw=0.8, label=labels[0])
        teff, logg, feh = params[i]
        ax.set_title(
            f"Teff {teff:.0f} K, log g {logg:.2f}, [Fe/H] {feh:+.2f}", fontsize=9, loc="left"
        )
        ax.set_ylabel("norm. flux")
        lo = np.nanpercentile(np.concatenate([obs, synthetic[i]]), 0.5)
        ax.set_ylim(max(lo - 0.05, -0.1), 1.25)
    axes[0, 0].legend(loc="lower right", fontsize=8, ncol=2)
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
