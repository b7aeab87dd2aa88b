"""Preprocessing of spectra, batched over spectra: wavelength frames, resampling, resolution
degrading and pseudo-continuum normalisation.

Every function takes ``[N, P]`` arrays (one spectrum is N = 1) and returns new arrays. The NumPy
steps import without JAX (the reader processes of `sost_jax.data.prepare_files` stay light); the
JAX-compiled normalisation is imported on first use.
"""

from importlib import import_module
from typing import Any

from sost_jax.data.preprocess.degrade import degrade_to_fwhm, degrade_to_resolution, gaussian_kernel
from sost_jax.data.preprocess.resample import resample
from sost_jax.data.preprocess.settings import NormaliseSettings
from sost_jax.data.preprocess.wavelength import (
    air_to_vac,
    linear_grid,
    log_linear_grid,
    rv_to_z,
    to_rest_frame,
    vac_to_air,
)

_LAZY = {"normalise", "bspline_basis", "knot_interval_pixels"}

__all__ = [
    "NormaliseSettings",
    "air_to_vac",
    "bspline_basis",
    "degrade_to_fwhm",
    "degrade_to_resolution",
    "gaussian_kernel",
    "knot_interval_pixels",
    "linear_grid",
    "log_linear_grid",
    "normalise",
    "resample",
    "rv_to_z",
    "to_rest_frame",
    "vac_to_air",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module("sost_jax.data.preprocess.continuum"), name)
    raise AttributeError(f"module 'sost_jax.data.preprocess' has no attribute {name!r}")
