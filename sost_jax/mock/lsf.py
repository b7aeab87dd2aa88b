"""The line-spread function of the mock survey, and what moves spectra between grids.

The LSF is a fixed kernel on the internal log-lambda grid (constant resolving power R):
a Gauss-Hermite core plus a Lorentzian fraction (`lsf_kernel`). `Convolver` applies it to
batches of spectra by FFT; `resample` interpolates them linearly onto output pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sost_jax.constants import C_KMS, FWHM_PER_SIGMA
from sost_jax.errors import InputError

__all__ = ["Convolver", "good_fft_size", "lsf_kernel", "resample"]


def lsf_kernel(
    resolution: float,
    pixel_dv: float,
    h4: float = 0.0,
    lorentz_fraction: float = 0.0,
    halfwidth: float = 12.0,
) -> np.ndarray:
    """LSF kernel on a log-lambda grid (constant resolving power).

    Parameters
    ----------
    resolution : float
        Resolving power R = lambda / FWHM of the core.
    pixel_dv : float
        Pixel size of the log-lambda grid [km/s].
    h4 : float
        Gauss-Hermite coefficient of the core; 0 gives a Gaussian.
    lorentz_fraction : float
        Fraction of the kernel in a Lorentzian of the same FWHM (extended wings).
    halfwidth : float
        Half length of the kernel in core sigmas.

    Returns
    -------
    kernel : float64 [2 K + 1]
        Symmetric weights summing to 1, centred on index K.
    """
    if resolution <= 0 or pixel_dv <= 0:
        raise InputError(f"resolution and pixel_dv must be > 0, got {resolution}, {pixel_dv}")
    sigma = C_KMS / (resolution * FWHM_PER_SIGMA) / pixel_dv  # [pixels]
    k = int(np.ceil(halfwidth * sigma))
    y = np.arange(-k, k + 1) / sigma
    hermite4 = (4.0 * y**4 - 12.0 * y**2 + 3.0) / np.sqrt(24.0)
    core = np.exp(-0.5 * y**2) * (1.0 + h4 * hermite4)
    core /= core.sum()
    gamma = 0.5 * FWHM_PER_SIGMA  # Lorentzian half width in sigmas
    wings = 1.0 / (1.0 + (y / gamma) ** 2)
    wings /= wings.sum()
    return (1.0 - lorentz_fraction) * core + lorentz_fraction * wings


def good_fft_size(n: int) -> int:
    """Smallest 2**a 3**b 5**c >= n."""
    best = 1 << int(np.ceil(np.log2(n)))
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            size = f35
            while size < n:
                size *= 2
            best = min(best, size)
            f35 *= 3
        f5 *= 5
    return best


class Convolver(NamedTuple):
    """FFT convolution of [N, Pf] arrays with a fixed kernel; the pad value is 1."""

    n_fine: int
    n_fft: int
    kernel_fft: np.ndarray  # complex64 [n_fft // 2 + 1]

    @classmethod
    def build(cls, kernel: np.ndarray, n_fine: int) -> Convolver:
        """The convolver of rows of ``n_fine`` pixels with ``kernel`` [2 K + 1] (centred)."""
        half = kernel.size // 2
        n_fft = good_fft_size(n_fine + 2 * half + 1)
        wrapped = np.zeros(n_fft)
        wrapped[: half + 1] = kernel[half:]
        wrapped[n_fft - half :] = kernel[:half]
        return cls(n_fine, n_fft, np.fft.rfft(wrapped).astype(np.complex64))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` [N, n_fine] convolved with the kernel: float32 [N, n_fine]."""
        buf = np.ones((x.shape[0], self.n_fft), dtype=np.float32)
        buf[:, : self.n_fine] = x
        spec = np.fft.rfft(buf, axis=1)
        spec *= self.kernel_fft
        return np.fft.irfft(spec, n=self.n_fft, axis=1)[:, : self.n_fine]


def resample(fine: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows of ``fine`` [N, Pf] at fractional pixel positions.

    Parameters
    ----------
    fine : float32 [N, Pf]
        Spectra on the fine grid.
    pos : float [P] or [N, P]
        Fractional pixel positions on the fine grid, shared or one row per spectrum.

    Returns
    -------
    flux : float32 [N, P]
    """
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, fine.shape[1] - 2)
    w = (pos - i0).astype(np.float32)
    if pos.ndim == 1:
        return fine[:, i0] * (1.0 - w) + fine[:, i0 + 1] * w
    lo = np.take_along_axis(fine, i0, axis=1)
    hi = np.take_along_axis(fine, i0 + 1, axis=1)
    return lo * (1.0 - w) + hi * w
