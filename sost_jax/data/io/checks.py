"""Validation and masking of spectra as read, one or a whole chunk at once.

A reader hands back a `sost_jax.data.spectra.RawSpectrum` (arrays as stored: any float type, any
byte order, an optional mask of bad pixels); `checked_rows` applies the rules every spectrum
must pass, over a chunk of them in a few array passes, and says why each failed one failed.
Read one by one, the same rules cost ~100 us per spectrum in per-call overhead (a dozen
small NumPy operations per file); over a chunk of 256, a few us.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sost_jax.data.spectra import RawSpectrum, ReadError, Spectrum


def _wave_reason(wave: np.ndarray) -> str | None:
    if not (np.isfinite(wave).all() and (np.diff(wave) > 0).all()):
        return "wavelengths are not finite and strictly increasing"
    return None


def checked_rows(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    bad: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
    """Check and mask spectra that share a pixel count.

    Parameters
    ----------
    wave : [P] (shared) or [N, P]
        Wavelengths [Å].
    flux, ivar : [N, P]
        Flux and inverse variance as stored; changed in place where they are writable
        float32 arrays (see ``flux``, ``ivar`` below).
    bad : [N, P] or None
        Non-zero for pixels the file marks bad (e.g. LAMOST's AND mask).

    Returns
    -------
    wave : float64, shaped as given
    flux : float32 [N, P]
        0 where not finite.
    ivar : float32 [N, P]
        0 where the pixel is bad, the flux or ivar not finite, or ivar <= 0.
    reasons : list of N (str or None)
        Why a spectrum is unusable (fewer than 2 pixels; wavelengths not finite and
        increasing; flux NaN/inf everywhere; ivar zero everywhere; every pixel masked), None
        when it is usable.
    """
    wave = np.asarray(wave, np.float64)
    flux, ivar = (np.asarray(x, np.float32) for x in (flux, ivar))
    flux, ivar = (x if x.flags.writeable else x.copy() for x in (flux, ivar))
    n, p = flux.shape
    if p < 2:
        return wave, flux, ivar, ["fewer than 2 pixels"] * n
    if wave.ndim == 1:
        reasons: list[str | None] = [_wave_reason(wave)] * n
    else:
        reasons = [_wave_reason(w) for w in wave]
    finite_flux = np.isfinite(flux)
    good = (ivar > 0) & (ivar < np.inf)
    has_ivar = good.any(axis=1)
    good &= finite_flux
    if bad is not None:
        good &= np.asarray(bad) == 0
    has_flux, has_good = finite_flux.any(axis=1), good.any(axis=1)
    for i in np.flatnonzero(~(has_flux & has_ivar & has_good)):
        if reasons[i] is None:
            reasons[i] = (
                "flux is NaN/inf everywhere"
                if not has_flux[i]
                else "ivar is zero (or invalid) everywhere"
                if not has_ivar[i]
                else "every pixel is masked"
            )
    if not finite_flux.all():
        flux[~finite_flux] = 0.0
    ivar[~good] = 0.0
    return wave, flux, ivar, reasons


def check_lengths(raw: RawSpectrum) -> None:
    """Raise `ReadError` (message starting with the path) unless ``raw``'s arrays are 1-D
    and of one length."""
    arrays = (raw.wave, raw.flux, raw.ivar) + (() if raw.bad is None else (raw.bad,))
    if len({np.shape(x) for x in arrays}) != 1 or np.ndim(raw.wave) != 1:
        raise ReadError(f"{raw.meta.get('path')}: wavelength, flux and ivar lengths differ")


def spectrum_from_raw(raw: RawSpectrum) -> Spectrum:
    """One checked, masked `Spectrum` from a `RawSpectrum` (see `checked_rows`).

    Raises
    ------
    ReadError
        Lengths differ, or a rule of `checked_rows` fails; the message starts with the path.
    """
    check_lengths(raw)
    wave, flux, ivar = (np.asarray(x) for x in (raw.wave, raw.flux, raw.ivar))
    bad = None if raw.bad is None else np.asarray(raw.bad)
    wave, flux, ivar, (reason,) = checked_rows(
        wave,
        np.array(flux[None], np.float32),
        np.array(ivar[None], np.float32),
        None if bad is None else bad[None],
    )
    if reason is not None:
        raise ReadError(f"{raw.meta.get('path')}: {reason}")
    return Spectrum(wave, flux[0], ivar[0], ivar[0] == 0, raw.meta)


def stacked(rows: Sequence[np.ndarray], dtype: Any = np.float32) -> np.ndarray:
    """[N, P] array of ``dtype`` from N equal-length rows of any dtype and byte order (one
    conversion per element, no intermediate copy)."""
    out = np.empty((len(rows), len(rows[0]) if rows else 0), dtype)
    for i, row in enumerate(rows):
        out[i] = row
    return out
