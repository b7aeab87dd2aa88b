"""Figures of spectra against wavelength: the data, the translation, the templates, the fits.

Each function writes a PNG (and a PDF) and returns the paths written:

- `plot_spectra_panels`: normalised spectra of several kinds at the same labels;
- `plot_residuals` (paper Fig. 7): |relative residual| against wavelength, median and
  16-84 percentile band, per kind of reconstruction;
- `plot_translation_examples` (Figs. 9-10): observed, raw and translated spectra of a few
  stars with residuals; `plot_learnt_change`: mean |translated - raw| against wavelength;
- `plot_template_gallery` (Fig. 10): a selection of templates, offset vertically;
- `plot_fit_examples`: continuous fits of a few spectra, with residuals in units of the
  noise.

Units: wavelength [Å], Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from sost_jax.errors import InputError  # noqa: E402
from sost_jax.evaluation.figures.save import save_figure  # noqa: E402


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


# --------------------------------------------------------------------------- Fig. 7


def _window_mask(wave: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """Pixels of ``wave`` [P] (Å) inside ``window`` (lo, hi) [Å], or every finite one for
    None; an error when there are none."""
    if wave.ndim != 1:
        raise InputError(f"wave must be [P], got shape {wave.shape}")
    keep = np.isfinite(wave) if window is None else (wave >= window[0]) & (wave <= window[1])
    if not keep.any():
        raise InputError(f"no wavelength inside the window {window} Å")
    return keep


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
    keep = _window_mask(wave, window)
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
    return save_figure(fig, path, pdf)


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


# --------------------------------------------------------------------------- continuous fits


def plot_fit_examples(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    model: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike,
    window: tuple[float, float] | None = (5000.0, 5500.0),
    pdf: bool = True,
) -> list[Path]:
    """Continuous fits of a few spectra: data, model and residual in units of the noise.

    Parameters
    ----------
    wave : [P]
        Wavelength [Å].
    flux, ivar, model : [N, P]
        Normalised spectra, their inverse variance (0: no data) and the fitted models.
    titles : N strings
        One per spectrum (e.g. fitted and true labels).
    path : path
        Output file (suffix replaced by .png / .pdf).
    window : (lo, hi) [Å], optional
        Wavelength range drawn; None: all.
    """
    wave = np.asarray(wave, np.float64)
    keep = _window_mask(wave, window)
    flux, ivar, model = (np.atleast_2d(np.asarray(a, np.float64)) for a in (flux, ivar, model))
    if not flux.shape == ivar.shape == model.shape or flux.shape[1] != wave.size:
        raise InputError(f"flux, ivar and model must all be [N, {wave.size}]")
    if len(titles) != len(flux):
        raise InputError(f"give one title per spectrum ({len(flux)}), got {len(titles)}")
    n = len(flux)
    fig, axes = plt.subplots(
        2 * n, 1, figsize=(10, 2.6 * n), sharex=True, gridspec_kw={"height_ratios": [3, 1] * n}
    )
    for i in range(n):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        good = keep & (ivar[i] > 0) & np.isfinite(flux[i])
        data = np.where(good, flux[i], np.nan)
        top.plot(wave[keep], data[keep], color="k", lw=0.7, label="data")
        top.plot(wave[keep], model[i, keep], color="C3", lw=0.8, label="model")
        top.set_title(titles[i], fontsize=9)
        top.set_ylabel("flux")
        pull = np.where(good, (flux[i] - model[i]) * np.sqrt(np.where(good, ivar[i], 0)), np.nan)
        bottom.plot(wave[keep], pull[keep], color="C0", lw=0.5)
        bottom.axhline(0.0, color="k", lw=0.5)
        bottom.set_ylabel("res. / σ")
        if i == 0:
            top.legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel("wavelength [Å]")
    return save_figure(fig, path, pdf)
