"""Stellar parameters of the mock survey: a clumpy, survey-like mix, and a regular grid.

`sample_parameters` draws (Teff, log g, [Fe/H]) from a mixture of populations that a
magnitude-limited spectroscopic survey such as LAMOST sees: main-sequence dwarfs on a smooth
Teff-log g relation, a tight red clump, a red-giant branch whose temperature follows log g
and [Fe/H], subgiants, a few hot F/A stars and M dwarfs. [Fe/H] is a disc Gaussian plus a
metal-poor tail. `grid_parameters` gives the regular grid a synthetic library (e.g. Kurucz)
would be computed on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sost_jax.errors import InputError
from sost_jax.mock.settings import MockSettings, PopulationSettings

__all__ = ["COMPONENTS", "grid_parameters", "main_sequence_logg", "sample_parameters"]

COMPONENTS: tuple[str, ...] = ("dwarf", "red_clump", "rgb", "subgiant", "hot", "m_dwarf")
"""Names of the populations, in the order of the component index `sample_parameters` returns."""


def main_sequence_logg(teff: np.ndarray) -> np.ndarray:
    """Smooth main-sequence log g as a function of Teff.

    Parameters
    ----------
    teff : float [...]
        Effective temperature [K], 3000-9000.

    Returns
    -------
    logg : float64 [...]
        Surface gravity [dex]: ~4.8 for M dwarfs, 4.45 for the Sun, ~4.0 for A stars.
    """
    t = np.asarray(teff, dtype=np.float64)
    return 4.85 - 0.3 * (t - 3500.0) / 2500.0 - 0.45 / (1.0 + np.exp(-(t - 6400.0) / 500.0))


def _population(cfg: MockSettings | PopulationSettings | None) -> PopulationSettings:
    if cfg is None:
        return PopulationSettings()
    return cfg.params if isinstance(cfg, MockSettings) else cfg


def sample_parameters(
    rng: np.random.Generator,
    n: int,
    cfg: MockSettings | PopulationSettings | None = None,
    return_components: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Draw stellar parameters from a clumpy, survey-like population mix.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness; the draws are a deterministic function of its state.
    n : int
        Number of stars.
    cfg : MockSettings or PopulationSettings, optional
        The mock settings or their ``params`` section; defaults to ``PopulationSettings()``.
    return_components : bool
        Also return the population index of each star (see `COMPONENTS`).

    Returns
    -------
    params : float64 [n, 3]
        Teff [K], log g [dex], [Fe/H] [dex], clipped to the configured ranges.
    components : int64 [n]
        Only with ``return_components``: index into `COMPONENTS`.
    """
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    p = _population(cfg)
    weights = np.array([float(getattr(p.weights, name)) for name in COMPONENTS])
    if np.any(weights < 0) or weights.sum() <= 0:
        raise InputError(f"params.weights must be >= 0 and not all zero, got {weights}")
    comp = rng.choice(len(COMPONENTS), size=n, p=weights / weights.sum())

    # [Fe/H]: disc Gaussian plus a metal-poor tail, twice as frequent among giants.
    giant = (comp == 1) | (comp == 2)
    halo = rng.random(n) < np.where(giant, 2.0, 1.0) * p.halo_fraction
    feh = np.where(
        halo,
        rng.normal(p.halo_feh_mean, p.halo_feh_sigma, n),
        rng.normal(p.feh_mean, p.feh_sigma, n),
    )
    feh = np.clip(feh, *p.feh_range)

    u = rng.random((n, 2))
    z = rng.standard_normal((n, 2))
    teff = np.empty(n)
    logg = np.empty(n)

    def fill(index: int, t: np.ndarray, g: np.ndarray) -> None:
        sel = comp == index
        teff[sel] = t[sel]
        logg[sel] = g[sel]

    # Dwarfs: Teff peaked at F/G types with a K tail; log g on the MS relation + scatter,
    # metal-poor dwarfs slightly hotter.
    t = np.clip(5900.0 + 650.0 * z[:, 0] - 150.0 * feh, 4000.0, 7000.0)
    fill(0, t, main_sequence_logg(t) + 0.12 * np.tanh(z[:, 1]))
    # Red clump: hotter when metal-poor.
    fill(1, 4700.0 - 250.0 * feh + 90.0 * z[:, 0], 2.42 + 0.1 * z[:, 1])
    # Red-giant branch: uniform in log g, Teff along a track shifted by [Fe/H].
    g = 0.2 + 3.4 * u[:, 0]
    fill(2, 4620.0 + 380.0 * (g - 2.5) - 250.0 * (feh + 0.2) + 70.0 * z[:, 0], g)
    # Subgiants: between the turn-off and the base of the giant branch.
    t = 5000.0 + 1300.0 * u[:, 0]
    fill(3, t, 3.6 + 0.35 * (t - 5000.0) / 1300.0 + 0.12 * z[:, 1])
    # Hot F/A-type dwarfs.
    t = 6800.0 + 1200.0 * u[:, 0]
    fill(4, t, main_sequence_logg(t) + 0.15 * z[:, 1])
    # M dwarfs.
    t = 3500.0 + 500.0 * u[:, 0]
    fill(5, t, main_sequence_logg(t) + 0.1 * z[:, 1])

    params = np.stack([np.clip(teff, *p.teff_range), np.clip(logg, *p.logg_range), feh], axis=1)
    if return_components:
        return params, comp.astype(np.int64)
    return params


def _axis(low: float, high: float, step: float) -> np.ndarray:
    if step <= 0:
        raise InputError(f"grid step must be > 0, got {step}")
    if high < low:
        raise InputError(f"grid range must have low <= high, got ({low}, {high})")
    count = int(np.floor((high - low) / step + 1e-9)) + 1
    return low + step * np.arange(count)


def grid_parameters(
    teff_step: float = 250.0,
    logg_step: float = 0.5,
    feh_step: float = 0.5,
    teff_range: Sequence[float] = (3500.0, 8000.0),
    logg_range: Sequence[float] = (0.0, 5.0),
    feh_range: Sequence[float] = (-2.5, 0.5),
) -> np.ndarray:
    """Regular (Teff, log g, [Fe/H]) grid, like the nodes of a synthetic library.

    Parameters
    ----------
    teff_step, logg_step, feh_step : float
        Grid steps [K, dex, dex].
    teff_range, logg_range, feh_range : (float, float)
        Inclusive ranges [K, dex, dex]; the upper end is kept when it falls on the step.

    Returns
    -------
    params : float64 [M, 3]
        All combinations, Teff varying slowest and [Fe/H] fastest. With the defaults,
        19 x 11 x 7 = 1463 nodes. Use ``grid_parameters(**cfg.grid.to_dict())`` for mock settings.
    """
    axes = [
        _axis(*teff_range, teff_step),
        _axis(*logg_range, logg_step),
        _axis(*feh_range, feh_step),
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)
