"""Wavelength grids and frames: rest-frame shifts and the vacuum <-> air conversion."""

from __future__ import annotations

import numpy as np

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError


def linear_grid(start: float, stop: float, step: float) -> np.ndarray:
    """Uniform wavelength grid.

    Parameters
    ----------
    start, stop : float
        First and last pixel centre [Å]; ``stop`` is included when it falls on the grid.
    step : float
        Pixel size [Å].

    Returns
    -------
    float64 [P]
        Pixel centres [Å]. The default sost-jax grid, ``linear_grid(3900, 8699, 1)``, has 4800.
    """
    if step <= 0 or stop <= start:
        raise InputError(f"bad wavelength grid: start={start}, stop={stop}, step={step}")
    n = int(np.floor((stop - start) / step + 1e-9)) + 1
    return start + step * np.arange(n, dtype=np.float64)


def log_linear_grid(start: float, n: int, dlog10: float) -> np.ndarray:
    """Grid uniform in log10(wavelength), as the LAMOST and SDSS pipelines write.

    Parameters
    ----------
    start : float
        First pixel centre [Å].
    n : int
        Number of pixels.
    dlog10 : float
        Step in log10(λ / Å); LAMOST uses 1e-4 (69 km/s per pixel).

    Returns
    -------
    float64 [n]
        Pixel centres [Å].
    """
    return 10.0 ** (np.log10(start) + dlog10 * np.arange(n, dtype=np.float64))


def rv_to_z(rv_kms: np.ndarray | float) -> np.ndarray:
    """Redshift of a radial velocity (relativistic Doppler formula).

    Parameters
    ----------
    rv_kms : [N] or scalar
        Line-of-sight velocity [km/s], positive receding.

    Returns
    -------
    [N] or scalar
        Redshift z, with λ_obs = λ_rest (1 + z).
    """
    beta = np.asarray(rv_kms, dtype=np.float64) / C_KMS
    return np.sqrt((1.0 + beta) / (1.0 - beta)) - 1.0


def to_rest_frame(wave: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    """Shift observed wavelengths to the rest frame.

    Parameters
    ----------
    wave : [P] or [N, P]
        Observed wavelengths [Å].
    z : scalar or [N]
        Redshift of each spectrum (LAMOST header ``Z``).

    Returns
    -------
    [N, P] (or [P] for scalar z and 1-D wave)
        Rest-frame wavelengths λ / (1 + z) [Å].
    """
    z = np.asarray(z, dtype=np.float64)
    wave = np.asarray(wave, dtype=np.float64)
    if z.ndim == 0:
        return wave / (1.0 + z)
    return wave / (1.0 + z[:, None])


def _refractive_index_air(wave_vac: np.ndarray) -> np.ndarray:
    """n(λ) of standard air (Ciddor 1996 form as given by Morton 2000), λ in vacuum [Å]."""
    s2 = (1e4 / wave_vac) ** 2
    return 1.0 + 0.0000834254 + 0.02406147 / (130.0 - s2) + 0.00015998 / (38.9 - s2)


def vac_to_air(wave_vac: np.ndarray) -> np.ndarray:
    """Vacuum to air wavelengths [Å] (IAU convention: unchanged below 2000 Å)."""
    wave_vac = np.asarray(wave_vac, dtype=np.float64)
    air = wave_vac / _refractive_index_air(wave_vac)
    return np.where(wave_vac < 2000.0, wave_vac, air)


def air_to_vac(wave_air: np.ndarray) -> np.ndarray:
    """Air to vacuum wavelengths [Å], the inverse of `vac_to_air` to < 1e-6 Å.

    Solved by fixed-point iteration on n(λ_vac); three passes converge in the optical.
    """
    wave_air = np.asarray(wave_air, dtype=np.float64)
    vac = wave_air.copy()
    for _ in range(4):
        vac = wave_air * _refractive_index_air(vac)
    return np.where(wave_air < 2000.0, wave_air, vac)
