"""Plain containers passed between stages, and the error raised for unreadable input."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sost_jax.errors import InputError


class Spectrum(NamedTuple):
    """One spectrum as read from a file, before any preprocessing.

    Attributes
    ----------
    wave : float64 [P]
        Wavelength of each pixel [Å], increasing. ``meta["medium"]`` says "vacuum", "air"
        or None (unknown).
    flux : float32 [P]
        Flux in the file's units.
    ivar : float32 [P]
        Inverse variance of ``flux``; 0 where the pixel carries no information.
    mask : bool [P]
        True for pixels to ignore (bad mask bits, NaN, padded gaps).
    meta : dict
        Header metadata: at least ``id`` (str) and ``path``; readers add what their format
        carries (``obsid``, ``ra``/``dec`` [deg], ``z``, ``snr_g`` ..., ``medium``).
    """

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    meta: dict[str, Any]


class RawSpectrum(NamedTuple):
    """One spectrum's arrays as a file stores them, before any check (see
    `sost_jax.data.io.checks`, which turns it into a `Spectrum`).

    Attributes
    ----------
    wave : [P]
        Wavelength of each pixel [Å], any float type and byte order.
    flux, ivar : [P]
        Flux and inverse variance, any float type and byte order.
    bad : [P] or None
        Non-zero for pixels the file marks bad (LAMOST's AND mask).
    meta : dict
        As `Spectrum.meta`.
    """

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    bad: np.ndarray | None
    meta: dict[str, Any]


class Grid(NamedTuple):
    """A grid of synthetic spectra on one wavelength axis.

    Attributes
    ----------
    params : float64 [N, 3]
        Teff [K], log g [dex], [Fe/H] (or [M/H]) [dex] of each model.
    wave : float64 [P]
        Wavelength [Å], increasing; ``meta["medium"]`` as for `Spectrum`.
    flux : float32 [N, P]
        Model fluxes (any units, e.g. F_lambda).
    meta : dict
        Source paths and format notes.
    """

    params: np.ndarray
    wave: np.ndarray
    flux: np.ndarray
    meta: dict[str, Any]


class ReadError(InputError):
    """A file cannot be read as a spectrum; the message names the file and the reason."""
