"""Preprocessing of spectra, batched over spectra: wavelength frames, resampling, resolution
degrading and pseudo-continuum normalisation.

Every function takes ``[N, P]`` arrays (one spectrum is N = 1) and returns new arrays.
"""

from sost_jax.preprocess.degrade import degrade_to_fwhm, degrade_to_resolution, gaussian_kernel
from sost_jax.preprocess.normalise import (
    NormaliseSettings,
    bspline_basis,
    normalise,
)
from sost_jax.preprocess.resample import resample
from sost_jax.preprocess.wavelength import (
    air_to_vac,
    linear_grid,
    log_linear_grid,
    rv_to_z,
    to_rest_frame,
    vac_to_air,
)

__all__ = [
    "NormaliseSettings",
    "air_to_vac",
    "bspline_basis",
    "degrade_to_fwhm",
    "degrade_to_resolution",
    "gaussian_kernel",
    "linear_grid",
    "log_linear_grid",
    "normalise",
    "resample",
    "rv_to_z",
    "to_rest_frame",
    "vac_to_air",
]
