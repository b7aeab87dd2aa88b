"""Resampling spectra onto a common wavelength grid with inverse variance propagated."""

from __future__ import annotations

import numpy as np


def _interval_positions(wave: np.ndarray, new_wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour index and fractional position of each new pixel, batched over rows.

    Parameters
    ----------
    wave : [N, P_in]
        Increasing input wavelengths of each row [Å].
    new_wave : [P_out]
        Output wavelengths [Å].

    Returns
    -------
    left : int64 [N, P_out]
        Index i with wave[i] <= new < wave[i + 1]; -1 or P_in - 1 outside the coverage.
    t : float64 [N, P_out]
        (new - wave[i]) / (wave[i + 1] - wave[i]).
    """
    n, p_in = wave.shape
    # One searchsorted over all rows: offset each row by a span larger than any wavelength
    # range, so rows never interleave.
    span = 2.0 * (max(wave.max(), new_wave.max()) - min(wave.min(), new_wave.min())) + 1.0
    offsets = span * np.arange(n, dtype=np.float64)[:, None]
    flat_in = (wave + offsets).ravel()
    flat_out = (new_wave[None, :] + offsets).ravel()
    idx = np.searchsorted(flat_in, flat_out, side="right").reshape(n, -1)
    left = idx - 1 - p_in * np.arange(n)[:, None]
    lo = np.clip(left, 0, p_in - 2)
    w_lo = np.take_along_axis(wave, lo, axis=1)
    w_hi = np.take_along_axis(wave, lo + 1, axis=1)
    t = (new_wave[None, :] - w_lo) / (w_hi - w_lo)
    return left, t


def resample(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    new_wave: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate spectra onto ``new_wave``, propagating inverse variance.

    A new pixel between input pixels i and i+1 at fraction t gets
    ``f = (1 - t) f_i + t f_(i+1)`` and ``var = (1 - t)^2 var_i + t^2 var_(i+1)``. It gets
    zero inverse variance (and flux 0) when it lies outside the input coverage or when a
    neighbour that contributes to it has zero inverse variance: no flux is invented over gaps
    or beyond the ends. Neighbour covariance introduced by interpolation is ignored.

    Parameters
    ----------
    wave : [P_in] or [N, P_in]
        Increasing input wavelengths [Å], shared or one row per spectrum (e.g. after a
        per-spectrum rest-frame shift).
    flux, ivar : [N, P_in]
        Flux and inverse variance; ivar = 0 marks bad pixels.
    new_wave : [P_out]
        Output wavelengths [Å].

    Returns
    -------
    flux, ivar : float32 [N, P_out]
    """
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if flux.ndim != 2 or ivar.shape != flux.shape:
        raise ValueError(f"flux and ivar must both be [N, P]; got {flux.shape}, {ivar.shape}")
    wave = np.broadcast_to(np.asarray(wave, dtype=np.float64), flux.shape)
    new_wave = np.asarray(new_wave, dtype=np.float64)
    p_in = flux.shape[1]

    left, t = _interval_positions(wave, new_wave)
    inside = (left >= 0) & (left <= p_in - 2)
    # A new pixel exactly on the last input pixel is inside too.
    on_last = left == p_in - 1
    on_last &= np.isclose(new_wave[None, :], wave[:, -1:], rtol=0.0, atol=1e-9)
    lo = np.clip(left, 0, p_in - 2)
    t = np.where(on_last, 1.0, t)
    inside |= on_last

    good = (ivar > 0) & np.isfinite(flux) & np.isfinite(ivar)
    f_lo = np.take_along_axis(flux, lo, axis=1)
    f_hi = np.take_along_axis(flux, lo + 1, axis=1)
    g_lo = np.take_along_axis(good, lo, axis=1) | (t >= 1.0)
    g_hi = np.take_along_axis(good, lo + 1, axis=1) | (t <= 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(good, 1.0 / np.where(good, ivar, 1.0), 0.0)
    v_lo = np.take_along_axis(v, lo, axis=1)
    v_hi = np.take_along_axis(v, lo + 1, axis=1)

    ok = inside & g_lo & g_hi
    f_lo = np.where(t >= 1.0, 0.0, f_lo)
    f_hi = np.where(t <= 0.0, 0.0, f_hi)
    new_flux = (1.0 - t) * f_lo + t * f_hi
    new_var = (1.0 - t) ** 2 * v_lo + t**2 * v_hi
    ok &= new_var > 0
    with np.errstate(divide="ignore"):
        new_ivar = np.where(ok, 1.0 / np.where(ok, new_var, 1.0), 0.0)
    new_flux = np.where(ok, new_flux, 0.0)
    return new_flux.astype(np.float32), new_ivar.astype(np.float32)
