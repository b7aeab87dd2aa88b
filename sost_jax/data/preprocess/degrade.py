"""Degrading spectral resolution with a Gaussian kernel (FFT convolution, batched)."""

from __future__ import annotations

import numpy as np

from sost_jax.constants import C_KMS, FWHM_PER_SIGMA
from sost_jax.errors import InputError


def gaussian_kernel(sigma_pix: float, half_width: float = 5.0) -> np.ndarray:
    """Normalised Gaussian kernel sampled at integer pixel offsets.

    Parameters
    ----------
    sigma_pix : float
        Standard deviation [pixels].
    half_width : float
        Kernel extends to ``half_width`` sigma each side.

    Returns
    -------
    float64 [2 h + 1], summing to 1.
    """
    h = max(1, int(np.ceil(half_width * sigma_pix)))
    x = np.arange(-h, h + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_pix) ** 2)
    return k / k.sum()


def _convolve_rows(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same'-size linear (zero-padded) convolution of each row of ``x`` [N, P] by FFT."""
    p, k = x.shape[1], kernel.size
    n_fft = 1 << int(np.ceil(np.log2(p + k - 1)))
    spec = np.fft.rfft(x, n_fft, axis=1) * np.fft.rfft(kernel, n_fft)[None, :]
    full = np.fft.irfft(spec, n_fft, axis=1)
    start = (k - 1) // 2
    return full[:, start : start + p]


def _smooth(
    flux: np.ndarray, ivar: np.ndarray | None, sigma_pix: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Normalised convolution: bad pixels (ivar = 0) neither contribute nor leave holes.

    The smoothed flux is conv(f m) / conv(m) with m the good-pixel indicator, so masked or
    uncovered pixels do not drag the result towards zero. The variance of the result is
    conv(var m, k^2) / conv(m, k)^2; output pixels whose kernel saw under half the weight of
    good input get ivar 0.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    if sigma_pix <= 0:
        return flux.astype(np.float32), None if ivar is None else np.asarray(ivar, np.float32)
    kernel = gaussian_kernel(sigma_pix)
    if ivar is None:
        good = np.isfinite(flux)
    else:
        ivar = np.atleast_2d(np.asarray(ivar, dtype=np.float64))
        good = (ivar > 0) & np.isfinite(flux)
    m = good.astype(np.float64)
    norm = _convolve_rows(m, kernel)
    ok = norm > 0.5
    safe = np.where(ok, norm, 1.0)
    out = np.where(ok, _convolve_rows(np.where(good, flux, 0.0), kernel) / safe, 0.0)
    if ivar is None:
        return out.astype(np.float32), None
    var = np.where(good, 1.0 / np.where(good, ivar, 1.0), 0.0)
    var_out = _convolve_rows(var, kernel**2) / safe**2
    ok &= var_out > 0
    ivar_out = np.where(ok, 1.0 / np.where(ok, var_out, 1.0), 0.0)
    return out.astype(np.float32), ivar_out.astype(np.float32)


def _extra_sigma(fwhm_out: float, fwhm_in: float) -> float:
    if fwhm_out < fwhm_in:
        raise InputError(
            f"cannot degrade to a sharper resolution: target FWHM {fwhm_out} < current {fwhm_in}"
        )
    return float(np.sqrt(fwhm_out**2 - fwhm_in**2) / FWHM_PER_SIGMA)


def degrade_to_fwhm(
    wave: np.ndarray,
    flux: np.ndarray,
    fwhm_out: float,
    fwhm_in: float = 0.0,
    ivar: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convolve spectra on a linear grid to a constant Gaussian FWHM in Å.

    Parameters
    ----------
    wave : [P]
        Uniformly spaced wavelengths [Å].
    flux : [N, P]
        Fluxes.
    fwhm_out, fwhm_in : float
        Target and current FWHM [Å]; the kernel FWHM is sqrt(out^2 - in^2).
    ivar : [N, P], optional
        Inverse variance; masked pixels (0) are excluded (see `_smooth`).

    Returns
    -------
    flux : float32 [N, P], ivar : float32 [N, P] or None
    """
    step = np.diff(wave)
    if not np.allclose(step, step[0], rtol=1e-6):
        raise InputError("degrade_to_fwhm needs a uniformly spaced wavelength grid")
    return _smooth(flux, ivar, _extra_sigma(fwhm_out, fwhm_in) / step[0])


def degrade_to_resolution(
    wave: np.ndarray,
    flux: np.ndarray,
    r_out: float,
    r_in: float = np.inf,
    ivar: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convolve spectra on a log-linear grid to a constant resolving power R = λ / FWHM.

    Parameters
    ----------
    wave : [P]
        Wavelengths uniform in log(λ) [Å].
    flux : [N, P]
        Fluxes.
    r_out, r_in : float
        Target and current resolving power (``inf`` for an unresolved model).
    ivar : [N, P], optional
        Inverse variance, as in `degrade_to_fwhm`.

    Returns
    -------
    flux : float32 [N, P], ivar : float32 [N, P] or None
    """
    dlnl = np.diff(np.log(wave))
    if not np.allclose(dlnl, dlnl[0], rtol=1e-5):
        raise InputError("degrade_to_resolution needs a grid uniform in log(wavelength)")
    # FWHM in velocity is c / R; in ln(λ) units it is 1 / R.
    fwhm_in = 0.0 if np.isinf(r_in) else C_KMS / r_in
    sigma_kms = _extra_sigma(C_KMS / r_out, fwhm_in)
    return _smooth(flux, ivar, sigma_kms / C_KMS / dlnl[0])
