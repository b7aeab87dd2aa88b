"""Simulate the two domains of the mock survey: synthetic models and observed spectra.

Both domains start from the same physics: a continuum (`continuum`) times ``exp(-tau)`` with
``tau = strengths @ profiles`` from the built-in feature table (`sost_jax.mock.features`),
computed on an internal log-lambda grid (``cfg.wave.fine_*``), convolved with a line-spread
function (LSF) by FFT (a fixed kernel in log-lambda, i.e. constant R) and interpolated
linearly onto the requested wavelengths.

* Synthetic domain (`synthetic_spectra`): Gaussian LSF at ``cfg.synthetic.resolution``, rest
  frame, noiseless.
* Observed domain (`observed_spectra`), with its gap relative to the models:

  - systematic (fixed by ``cfg.gap.seed``, the same for every star): per-component
    strength mis-calibration with a Teff slope, per-line forest mis-calibration, weak lines
    the models lack, a blue flux deficit, a different and non-Gaussian LSF (resolution
    ``cfg.lsf.resolution``, Gauss-Hermite ``h4`` core plus a Lorentzian fraction), and
    telluric bands at the mean airmass and water;
  - per spectrum: Doppler shift by the true RV (``wave`` is then the observed-frame grid;
    ``lambda_obs = lambda_rest * (1 + v / c)``), telluric depth varying with airmass and
    water (observed frame, not shifted), a smooth flux-calibration residual (Legendre
    polynomial in log flux plus a step at the arm join), an overall brightness, Gaussian
    noise with variance ``c (F + B)`` scaled so the median S/N per pixel in
    ``cfg.noise.snr_band`` is the drawn S/N, bad-pixel runs and cosmic rays (flagged only
    with probability ``cfg.cosmic.flag_probability``), and a header redshift that misses
    the true RV by ``cfg.rv.residual_sigma``.

  With ``noiseless=True`` only the systematic part is applied, in the rest frame: these are
  the "oracle" observed templates that the translator should learn to produce.

Everything random comes from the ``rng`` argument or the seeds in the config; the results do
not depend on ``cfg.chunk_size`` (the random draws exactly; the fluxes to float32 rounding,
since matrix products and FFTs may round differently for batches of other sizes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError
from sost_jax.mock.features import (
    FeatureTable,
    feature_strengths,
    feature_table,
    profile_matrix,
)
from sost_jax.mock.lsf import Convolver, lsf_kernel, resample
from sost_jax.mock.settings import MockSettings, TelluricBand, mock_settings

__all__ = [
    "MASK_BAD_PIXEL",
    "MASK_COSMIC",
    "MAX_RV",
    "DomainModel",
    "build_model",
    "check_inputs",
    "continuum",
    "default_wave",
    "fine_grid",
    "gap_factors",
    "line_absorption",
    "log_continuum",
    "map_chunks",
    "mock_feature_table",
    "synthetic_spectra",
]

MASK_BAD_PIXEL: int = 1
"""Mask bit of bad-pixel runs (LAMOST BADCCD), set in both ANDMASK and ORMASK."""

MASK_COSMIC: int = 2
"""Mask bit of flagged cosmic rays (LAMOST BADPROFILE), set in ORMASK only."""

_HC_OVER_K = 1.438_776_877e8
"""Second radiation constant hc/k [Å K]."""

_CONTINUUM_REF_WAVE = 6000.0
"""Wavelength where `continuum` is normalised [Å]."""

_CONTINUUM_REF_FLUX = 1000.0
"""Continuum level at the reference wavelength [counts]."""


# --------------------------------------------------------------------------------------
# Grids and continuum
# --------------------------------------------------------------------------------------


def default_wave(cfg: MockSettings | None = None) -> np.ndarray:
    """Default output wavelength grid of the mock.

    Parameters
    ----------
    cfg : MockSettings, optional
        Mock configuration (``cfg.wave.out_*``); defaults to ``MockSettings()``.

    Returns
    -------
    wave : float64 [P]
        Linear grid [Å, vacuum], 3900-8699 Å in 1 Å steps (P = 4800) by default.
    """
    cfg = mock_settings(cfg)
    n = int(np.floor((cfg.wave.out_max - cfg.wave.out_min) / cfg.wave.out_step + 1e-9)) + 1
    return cfg.wave.out_min + cfg.wave.out_step * np.arange(n)


def fine_grid(cfg: MockSettings | None = None) -> np.ndarray:
    """Internal log-lambda grid on which features and LSFs are computed.

    Parameters
    ----------
    cfg : MockSettings, optional
        Mock configuration (``cfg.wave.fine_*``).

    Returns
    -------
    wave : float64 [Pf]
        Wavelengths [Å, vacuum], uniform in ln(lambda) with step ``fine_dv / c``.
    """
    cfg = mock_settings(cfg)
    step = cfg.wave.fine_dv / C_KMS
    n = int(np.floor(np.log(cfg.wave.fine_max / cfg.wave.fine_min) / step)) + 1
    return cfg.wave.fine_min * np.exp(step * np.arange(n))


def continuum(params: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """Smooth stellar continuum: Planck F_lambda with metal-line blanketing in the blue.

    Parameters
    ----------
    params : float [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    wave : float [P] or [N, P]
        Rest-frame wavelengths [Å]; a 2-D array gives each star its own grid.

    Returns
    -------
    flux : float64 [N, P]
        Continuum in counts-like units, 1000 at 6000 Å, so ~100-5000 over 3900-9000 Å for
        3500-8000 K. Blanketing (stronger for cool, metal-rich stars) and a weak gravity
        tilt make the shape depend on all three labels.
    """
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != 3:
        raise InputError(f"params must have shape [N, 3], got {params.shape}")
    return np.exp(log_continuum(params, np.asarray(wave, dtype=np.float64)))


def log_continuum(params: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """ln `continuum` [N, P], in the precision of ``wave`` (float32 for speed, or float64)."""
    dtype = wave.dtype
    teff, logg, feh = (params[:, i : i + 1] for i in range(3))
    blanket = 0.03 + 0.25 * 10.0 ** (0.5 * feh) / (1.0 + np.exp((teff - 6000.0) / 600.0))
    tilt = 0.05 * (logg - 4.0)

    def log_shape(w: np.ndarray, t, b, g) -> np.ndarray:
        ln_w = np.log(w)
        x = (_HC_OVER_K / t) / w
        return (g - 5.0) * ln_w - np.log(np.expm1(x)) - b * (4000.0 / w) ** 3

    ref = log_shape(np.float64(_CONTINUUM_REF_WAVE), teff, blanket, tilt)
    offset = np.log(_CONTINUUM_REF_FLUX) - ref
    # Per-star coefficients cast to the working precision; the heavy [N, P] part in it.
    shape = log_shape(wave, teff.astype(dtype), blanket.astype(dtype), tilt.astype(dtype))
    return shape + offset.astype(dtype)


# --------------------------------------------------------------------------------------
# The model of one configuration
# --------------------------------------------------------------------------------------


def mock_feature_table(cfg: MockSettings | None = None) -> FeatureTable:
    """The feature table of a configuration (shared lines plus observed-only lines).

    Parameters
    ----------
    cfg : MockSettings, optional
        Mock configuration (``cfg.features``, ``cfg.gap.n_missing`` ...).

    Returns
    -------
    table : FeatureTable
    """
    cfg = mock_settings(cfg)
    return feature_table(
        n_forest=cfg.features.n_forest,
        forest_seed=cfg.features.forest_seed,
        n_missing=cfg.gap.n_missing,
        missing_strength=cfg.gap.missing_strength,
        missing_seed=cfg.gap.seed,
        line_sigma=cfg.features.line_sigma,
        wave_range=(cfg.wave.fine_min, cfg.wave.fine_max),
    )


def _gap_draws(cfg: MockSettings, table: FeatureTable) -> tuple[np.ndarray, ...]:
    """Systematic gap drawn once from the gap seed: (offsets [F], slopes [F], forest [L])."""
    rng = np.random.default_rng([cfg.gap.seed, 1])
    offsets = cfg.gap.miscal_rms * rng.standard_normal(table.n_features)
    slopes = cfg.gap.miscal_teff_slope * rng.standard_normal(table.n_features)
    forest = np.exp(cfg.gap.forest_rms * rng.standard_normal(table.forest_center.size))
    forest[table.forest_observed_only] = 1.0
    return offsets, slopes, forest


def gap_factors(params: np.ndarray, cfg: MockSettings | None = None) -> np.ndarray:
    """Observed / synthetic strength ratio of every feature component (the known truth).

    Parameters
    ----------
    params : float [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    cfg : MockSettings, optional
        Mock configuration (``cfg.gap``).

    Returns
    -------
    factors : float64 [N, F]
        ``exp(offset_f + slope_f (Teff - 5500) / 1000)``, components as in
        `mock_feature_table`.
    """
    cfg = mock_settings(cfg)
    table = mock_feature_table(cfg)
    offsets, slopes, _ = _gap_draws(cfg, table)
    teff = np.asarray(params, dtype=np.float64)[:, :1]
    return np.exp(offsets + slopes * (teff - 5500.0) / 1000.0)


def _telluric_tau(fine_wave: np.ndarray, bands: Mapping[str, TelluricBand]) -> np.ndarray:
    """Optical depth of the O2 and H2O telluric bands at airmass 1: float64 [2, Pf]."""
    tau = np.zeros((2, fine_wave.size))
    for band in bands.values():
        start, end, depth = float(band.start), float(band.end), float(band.tau)
        length = end - start
        d = fine_wave - start
        if band.head:
            edge_lo, edge_hi = 1.0, 0.08 * length
            shape = 0.35 + 0.65 * np.exp(-np.clip(d, 0.0, None) / (0.35 * length))
        else:
            edge_lo = edge_hi = 0.12 * length
            shape = np.ones_like(d)
        rise = 1.0 / (1.0 + np.exp(np.clip(-d / edge_lo, -60.0, 60.0)))
        fall = 1.0 / (1.0 + np.exp(np.clip((d - length) / edge_hi, -60.0, 60.0)))
        tau[0 if band.species == "o2" else 1] += depth * shape * rise * fall
    return tau


MAX_RV = 2000.0
"""Largest |RV| the simulator accepts [km/s]; the fine grid is cropped with this margin."""


class DomainModel(NamedTuple):
    """Everything about the settings and an output grid that does not depend on the stars:
    one domain's (synthetic or observed) features, gap and LSF on the cropped fine grid."""

    cfg: MockSettings
    table: FeatureTable
    ln_fine0: float  # ln(lambda) of the first pixel of the cropped fine grid
    dln: float
    profiles: np.ndarray  # float32 [F, Pc], synthetic or observed
    gap_offsets: np.ndarray  # [F]
    gap_slopes: np.ndarray  # [F]
    conv: Convolver  # the domain's LSF
    telluric: np.ndarray  # float32 [2, P], O2 and H2O optical depth on the output grid


def build_model(cfg: MockSettings, wave: np.ndarray, observed: bool) -> DomainModel:
    """The synthetic (``observed=False``) or observed domain's model for the output grid.

    Parameters
    ----------
    cfg : MockSettings
        Mock settings.
    wave : float64 [P]
        Output wavelengths [Å], increasing (see `check_inputs`).
    observed : bool
        The observed domain (its gap, LSF and mean tellurics) rather than the synthetic one.

    Returns
    -------
    model : DomainModel
    """
    fine_full = fine_grid(cfg)
    dv = cfg.wave.fine_dv
    dln = dv / C_KMS
    if observed:
        kernel = lsf_kernel(
            cfg.lsf.resolution,
            dv,
            h4=cfg.lsf.h4,
            lorentz_fraction=cfg.lsf.lorentz_fraction,
            halfwidth=cfg.lsf.halfwidth,
        )
    else:
        kernel = lsf_kernel(cfg.synthetic.resolution, dv)
    # Crop the fine grid to what the output pixels (shifted by up to MAX_RV) and the
    # kernel reach; the result equals that of the full grid.
    margin = MAX_RV / dv + kernel.size // 2 + 4
    pos = (np.log(wave[[0, -1]]) - np.log(fine_full[0])) / dln
    lo = max(0, int(np.floor(pos[0] - margin)))
    hi = min(fine_full.size, int(np.ceil(pos[1] + margin)) + 1)
    fine = fine_full[lo:hi]
    conv = Convolver.build(kernel, fine.size)

    table = mock_feature_table(cfg)
    offsets, slopes, forest = _gap_draws(cfg, table)
    if observed:
        profiles = profile_matrix(fine, table, forest_factors=forest)
        # Convolve tau + 1 (the pad value is 1) so the band optical depths come back intact.
        tau = _telluric_tau(fine, cfg.tellurics.bands).astype(np.float32)
        tau = conv(tau + 1.0) - 1.0
        telluric = resample(tau, (np.log(wave) - np.log(fine[0])) / dln)
    else:
        profiles = profile_matrix(fine, table)
        telluric = np.zeros((2, wave.size), dtype=np.float32)
    return DomainModel(
        cfg=cfg,
        table=table,
        ln_fine0=float(np.log(fine[0])),
        dln=dln,
        profiles=profiles,
        gap_offsets=offsets,
        gap_slopes=slopes,
        conv=conv,
        telluric=telluric,
    )


def check_inputs(
    params: np.ndarray, wave: np.ndarray, cfg: MockSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The stellar parameters float64 [N, 3] and output wavelengths float64 [P] [Å] of a
    simulation, checked: finite labels with Teff > 0 K, an increasing grid inside the
    internal one (``cfg.wave.fine_min..fine_max`` less 1%); otherwise `InputError`."""
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != 3:
        raise InputError(f"params must have shape [N, 3], got {params.shape}")
    if not np.all(np.isfinite(params)):
        raise InputError("params must be finite")
    if np.any(params[:, 0] <= 0):
        raise InputError("Teff must be > 0 K")
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1 or wave.size < 2 or not np.all(np.diff(wave) > 0):
        raise InputError("wave must be a 1-D increasing array of at least 2 wavelengths [Å]")
    lo, hi = cfg.wave.fine_min * 1.01, cfg.wave.fine_max / 1.01
    if wave[0] < lo or wave[-1] > hi:
        raise InputError(
            f"wave spans {wave[0]:.1f}-{wave[-1]:.1f} Å but must lie within {lo:.1f}-{hi:.1f} "
            "Å (the internal grid cfg.wave.fine_min..fine_max less a 1% margin)"
        )
    return params, wave


def line_absorption(model: DomainModel, params: np.ndarray, observed: bool) -> np.ndarray:
    """LSF-convolved exp(-tau) on the cropped fine grid, float32 [n, Pc].

    ``params`` [n, 3] (Teff [K], log g [dex], [Fe/H] [dex]) give the feature strengths,
    times the gap factors (`gap_factors`) when ``observed``.
    """
    strengths = feature_strengths(params, model.table)
    if observed:
        strengths *= np.exp(
            model.gap_offsets + model.gap_slopes * (params[:, :1] - 5500.0) / 1000.0
        )
    tau = strengths.astype(np.float32) @ model.profiles
    np.negative(tau, out=tau)
    np.exp(tau, out=tau)
    return model.conv(tau)


def _num_threads(cfg: MockSettings) -> int:
    if cfg.num_threads > 0:
        return int(cfg.num_threads)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def map_chunks(
    fn: Callable[[slice], Any], n: int, cfg: MockSettings
) -> Iterator[tuple[slice, Any]]:
    """Apply ``fn`` to consecutive row slices of ``cfg.chunk_size`` of ``n`` rows, in
    ``cfg.num_threads`` threads, yielding (slice, result) in order."""
    slices = [slice(s, min(s + cfg.chunk_size, n)) for s in range(0, n, cfg.chunk_size)]
    threads = min(_num_threads(cfg), len(slices))
    if threads <= 1:
        for sl in slices:
            yield sl, fn(sl)
        return
    with ThreadPoolExecutor(threads) as pool:
        # Submit a bounded window ahead so that memory stays ~ (threads + 1) chunks.
        pending = [pool.submit(fn, sl) for sl in slices[: threads + 1]]
        for i, sl in enumerate(slices):
            result = pending[i].result()
            pending[i] = None
            nxt = i + threads + 1
            if nxt < len(slices):
                pending.append(pool.submit(fn, slices[nxt]))
            yield sl, result


# --------------------------------------------------------------------------------------
# Public simulators
# --------------------------------------------------------------------------------------


def synthetic_spectra(
    params: np.ndarray, wave: np.ndarray, cfg: MockSettings | None = None
) -> np.ndarray:
    """Noiseless spectra of the synthetic (model) domain.

    Parameters
    ----------
    params : float [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    wave : float [P]
        Rest-frame output wavelengths [Å, vacuum], increasing, inside the internal grid.
    cfg : MockSettings, optional
        Mock configuration; defaults to ``MockSettings()``.

    Returns
    -------
    flux : float32 [N, P]
        Continuum x exp(-tau), convolved with a Gaussian LSF of R = ``cfg.synthetic
        .resolution``, in the units of `continuum`.
    """
    cfg = mock_settings(cfg)
    params, wave = check_inputs(params, wave, cfg)
    model = build_model(cfg, wave, observed=False)
    pos = (np.log(wave) - model.ln_fine0) / model.dln
    wave32 = wave.astype(np.float32)
    out = np.empty((params.shape[0], wave.size), dtype=np.float32)

    def work(sl: slice) -> None:
        lines = resample(line_absorption(model, params[sl], observed=False), pos)
        out[sl] = lines * np.exp(log_continuum(params[sl], wave32))

    for _ in map_chunks(work, params.shape[0], cfg):
        pass
    return out
