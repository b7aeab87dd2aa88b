"""The observed domain of the mock survey: what a survey pipeline would deliver.

The noiseless model of `sost_jax.mock.simulate` times the synthetic-to-observed gap, then
the instrument and the sky, in stages: the per-spectrum conditions (`_drawn_conditions`:
S/N, RV, airmass, water, brightness, calibration, cosmic-ray and bad-pixel events), the
Doppler-shifted lines through the observed LSF, the continuum with the blue deficit and
the flux-calibration residual, the telluric transmission, noise at the drawn S/N, cosmic
rays and bad-pixel runs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError
from sost_jax.mock.lsf import resample
from sost_jax.mock.settings import GapSettings, MockSettings, NoiseSettings, mock_settings
from sost_jax.mock.simulate import (  # the noiseless model this module observes
    MASK_BAD_PIXEL,
    MASK_COSMIC,
    MAX_RV,
    DomainModel,
    build_model,
    check_inputs,
    line_absorption,
    log_continuum,
    map_chunks,
)

__all__ = ["band_snr", "observed_spectra"]


# --------------------------------------------------------------------------------------
# The conditions of each observation, drawn up front
# --------------------------------------------------------------------------------------


class _Events(NamedTuple):
    """Poisson-counted events (cosmic rays, bad-pixel runs): the spectrum (row) and pixel
    of each, and ``extra`` uniform variates per event."""

    rows: np.ndarray  # int64 [E]
    pix: np.ndarray  # int64 [E]
    u: np.ndarray  # float64 [E, extra]


class _Conditions(NamedTuple):
    """The per-spectrum draws of an observation, all [N] unless noted."""

    snr: np.ndarray  # S/N per pixel in noise.snr_band (inf when noiseless)
    rv_true: np.ndarray  # true RV [km/s]
    z_header: np.ndarray  # the pipeline's redshift
    z_err: np.ndarray  # and its error
    airmass: np.ndarray
    water: np.ndarray  # precipitable water relative to the median
    scale: np.ndarray  # overall brightness
    coef: np.ndarray  # [N, order] Legendre coefficients of the log calibration residual
    step: np.ndarray  # fractional step at the arm join
    noise_seeds: np.ndarray | None = None  # int64 [N]: one noise stream per spectrum
    cosmics: _Events | None = None
    bad: _Events | None = None

    def scalars(self) -> dict[str, np.ndarray]:
        """The conditions `observed_spectra` returns."""
        return {
            "snr": self.snr,
            "rv_true": self.rv_true,
            "z_header": self.z_header,
            "z_err": self.z_err,
            "airmass": self.airmass,
            "water": self.water,
            "flux_scale": self.scale,
        }


def _draw_snr(rng: np.random.Generator, n: int, cfg: MockSettings) -> np.ndarray:
    lo, hi, power = cfg.noise.snr_min, cfg.noise.snr_max, cfg.noise.snr_power
    u = rng.random(n)
    if hi == lo:
        return np.full(n, lo)
    if abs(power - 1.0) < 1e-9:
        return lo * (hi / lo) ** u
    e = 1.0 - power
    return (lo**e + u * (hi**e - lo**e)) ** (1.0 / e)


def _events(rng: np.random.Generator, counts: np.ndarray, n_pix: int, extra: int) -> _Events:
    """Rows, pixel positions and ``extra`` uniform variates of Poisson-counted events."""
    rows = np.repeat(np.arange(counts.size), counts)
    pix = rng.integers(0, n_pix, rows.size)
    return _Events(rows, pix, rng.random((rows.size, extra)))


def _noiseless_conditions(n: int, cfg: MockSettings) -> _Conditions:
    """The oracle's conditions: rest frame, mean airmass, median water, no residuals."""
    tel = cfg.tellurics
    return _Conditions(
        snr=np.full(n, np.inf),
        rv_true=np.zeros(n),
        z_header=np.zeros(n),
        z_err=np.zeros(n),
        airmass=np.full(n, 0.5 * (tel.airmass_min + tel.airmass_max)),
        water=np.ones(n),
        scale=np.ones(n),
        coef=np.zeros((n, cfg.fluxcal.order)),
        step=np.zeros(n),
    )


def _drawn_conditions(
    rng: np.random.Generator,
    n: int,
    n_pix: int,
    cfg: MockSettings,
    snr: np.ndarray | float | None,
    rv: np.ndarray | float | None,
) -> _Conditions:
    """The conditions of ``n`` observations of ``n_pix`` pixels, all drawn from one child of
    ``rng`` up front, so that chunking cannot change them; ``snr`` and ``rv`` [km/s], when
    given, replace the drawn S/N and true RV (the other draws are unchanged)."""
    tel, order = cfg.tellurics, cfg.fluxcal.order
    (rng_scalar,) = rng.spawn(1)
    snr_v = _draw_snr(rng_scalar, n, cfg)
    rv_true = np.clip(rng_scalar.normal(cfg.rv.mean, cfg.rv.sigma, n), -MAX_RV, MAX_RV)
    rv_meas = rv_true + rng_scalar.normal(0.0, cfg.rv.residual_sigma, n)
    airmass = rng_scalar.uniform(tel.airmass_min, tel.airmass_max, n)
    water = np.exp(tel.water_sigma * rng_scalar.standard_normal(n))
    scale = 10.0 ** (cfg.fluxcal.scale_sigma_dex * rng_scalar.standard_normal(n))
    degree = np.arange(1, order + 1)
    coef = rng_scalar.standard_normal((n, order))
    coef *= cfg.fluxcal.amplitude * np.sqrt((2 * degree + 1) / order)
    step = cfg.fluxcal.dichroic_amplitude * rng_scalar.standard_normal(n)
    cosmic_counts = rng_scalar.poisson(cfg.cosmic.rate * n_pix / 1000.0, n)
    cosmics = _events(rng_scalar, cosmic_counts, n_pix, 3)
    bad_counts = rng_scalar.poisson(cfg.mask.bad_fraction * n_pix / cfg.mask.run_length, n)
    bad = _events(rng_scalar, bad_counts, n_pix, 0)
    # One noise stream per spectrum, so that chunks can be simulated in any order.
    noise_seeds = rng_scalar.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    if snr is not None:
        snr_v = np.broadcast_to(np.asarray(snr, dtype=np.float64), (n,)).copy()
        if np.any(~(snr_v > 0)):
            raise InputError("snr must be > 0")
    if rv is not None:
        rv_imposed = np.broadcast_to(np.asarray(rv, dtype=np.float64), (n,)).copy()
        if np.any(~(np.abs(rv_imposed) < MAX_RV)):
            raise InputError(f"rv must be finite and |rv| < {MAX_RV:.0f} km/s")
        rv_meas = rv_meas - rv_true + rv_imposed
        rv_true = rv_imposed
    return _Conditions(
        snr=snr_v,
        rv_true=rv_true,
        z_header=rv_meas / C_KMS,
        z_err=np.full(n, cfg.rv.residual_sigma / C_KMS),
        airmass=airmass,
        water=water,
        scale=scale,
        coef=coef,
        step=step,
        noise_seeds=noise_seeds,
        cosmics=cosmics,
        bad=bad,
    )


# --------------------------------------------------------------------------------------
# The noiseless observed-frame flux: lines, continuum and calibration, tellurics
# --------------------------------------------------------------------------------------


def _doppler_lines(
    model: DomainModel, params: np.ndarray, rv: np.ndarray, wave: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The observed domain's line absorption (observed LSF) of stars moving at ``rv`` [n]
    [km/s], on the observed-frame pixels ``wave`` [P] [Å]: float32 [n, P], and the rest-frame
    wavelengths of those pixels, float32 [n, P] [Å] (observed = rest x (1 + v / c))."""
    shift = np.log1p(rv / C_KMS)[:, None]
    lines = resample(
        line_absorption(model, params, observed=True),
        (np.log(wave) - shift - model.ln_fine0) / model.dln,
    )
    wave_rest = (wave * np.exp(-shift)).astype(np.float32)
    return lines, wave_rest


def _log_blue_deficit(gap: GapSettings, wave_rest: np.ndarray) -> np.ndarray:
    """ln of the observed/model flux ratio from the blue deficit, in wave_rest's precision."""
    x = (wave_rest - wave_rest.dtype.type(gap.blue_deficit_wave)) / wave_rest.dtype.type(
        gap.blue_deficit_width
    )
    x = np.clip(x, -60.0, 60.0, out=x)
    return np.log1p(-wave_rest.dtype.type(gap.blue_deficit) / (1.0 + np.exp(x)))


def _fluxcal_basis(wave: np.ndarray, cfg: MockSettings) -> tuple[np.ndarray, np.ndarray]:
    """The shapes of the flux-calibration residual on ``wave`` [P] [Å]: Legendre polynomials
    of degree 1..order, float64 [order, P], and the smooth step at the arm join, [P]."""
    fluxcal = cfg.fluxcal
    x = 2.0 * (wave - fluxcal.wave_min) / (fluxcal.wave_max - fluxcal.wave_min)
    legendre = np.polynomial.legendre.legvander(x - 1.0, fluxcal.order)[:, 1:].T
    join = (wave - fluxcal.dichroic_wave) / fluxcal.dichroic_width
    join = 1.0 / (1.0 + np.exp(-np.clip(join, -60.0, 60.0))) - 0.5
    return legendre, join


def _calibrated_continuum(
    params: np.ndarray,
    wave_rest: np.ndarray,
    gap: GapSettings,
    cond: _Conditions,
    sl: slice,
    basis: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Continuum x blue deficit x calibration residual x brightness of the rows ``sl``:
    float32 [n, P], at the rest-frame wavelengths ``wave_rest`` [n, P] [Å]."""
    legendre, join = basis
    log_cont = log_continuum(params, wave_rest)
    log_cont += _log_blue_deficit(gap, wave_rest)
    residual = cond.coef[sl] @ legendre + cond.step[sl, None] * join
    log_cont += (residual + np.log(cond.scale[sl, None])).astype(np.float32)
    return np.exp(log_cont)


def _telluric_transmission(
    telluric: np.ndarray, airmass: np.ndarray, water: np.ndarray
) -> np.ndarray:
    """Transmission float32 [n, P] of the O2 and H2O optical depths ``telluric`` [2, P] (at
    airmass 1, median water) at each spectrum's ``airmass`` and ``water`` [n]."""
    tau_o2, tau_h2o = telluric
    am = airmass[:, None].astype(np.float32)
    return np.exp(-am * (tau_o2 + water[:, None].astype(np.float32) * tau_h2o))


# --------------------------------------------------------------------------------------
# What the detector and the pipeline add: noise, cosmic rays, bad pixels
# --------------------------------------------------------------------------------------


def _add_noise(
    clean: np.ndarray, band: np.ndarray, snr: np.ndarray, seeds: np.ndarray, noise: NoiseSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy flux and its true variance, float32 [n, P], of the noiseless ``clean`` [n, P].

    The variance is c (F + B): the median S/N over the ``band`` [P] pixels equals ``snr``
    [n] exactly, because S/N is monotonic in F. Each row draws from its own ``seeds`` [n].
    """
    med = np.maximum(np.median(clean[:, band], axis=1).astype(np.float64), 1e-30)
    background = noise.background * med
    c = med / (snr**2 * (1.0 + noise.background))
    var = np.maximum(clean, np.float32(0.0))
    var += background[:, None].astype(np.float32)
    var *= c[:, None].astype(np.float32)
    flux = np.empty_like(clean)
    for j, seed in enumerate(seeds):
        np.random.Generator(np.random.PCG64(int(seed))).standard_normal(
            dtype=np.float32, out=flux[j]
        )
    flux *= np.sqrt(var)
    flux += clean
    return flux, var


def _add_cosmic_rays(out: dict[str, np.ndarray], cosmics: _Events, cfg: MockSettings) -> None:
    """Spikes of amp_min..amp_max local sigmas, sometimes on two pixels, into ``out``; the
    flagged ones get ivar 0 and `MASK_COSMIC` in ORMASK."""
    flux, ivar, n_pix = out["flux"], out["ivar"], out["flux"].shape[1]
    cr_rows, cr_pix, cr_u = cosmics
    amp_lo, amp_hi = np.log(cfg.cosmic.amp_min), np.log(cfg.cosmic.amp_max)
    amps = np.exp(amp_lo + (amp_hi - amp_lo) * cr_u[:, 0])
    flagged = cr_u[:, 1] < cfg.cosmic.flag_probability
    double = cr_u[:, 2] < 0.4
    for rows, pix, a in (
        (cr_rows, cr_pix, amps),
        (cr_rows[double], np.minimum(cr_pix[double] + 1, n_pix - 1), 0.5 * amps[double]),
    ):
        sig = np.sqrt(cfg.noise.ivar_scale / ivar[rows, pix])
        flux[rows, pix] += (a * sig).astype(np.float32)
        if "cosmic" in out:
            out["cosmic"][rows, pix] = True
    for rows, pix in (
        (cr_rows[flagged], cr_pix[flagged]),
        (cr_rows[flagged & double], np.minimum(cr_pix[flagged & double] + 1, n_pix - 1)),
    ):
        out["ormask"][rows, pix] |= MASK_COSMIC
        ivar[rows, pix] = 0.0


def _mask_bad_pixels(out: dict[str, np.ndarray], bad: _Events, run_length: int) -> None:
    """Bad-pixel runs of ``run_length`` pixels into ``out``: no data (flux and ivar 0),
    `MASK_BAD_PIXEL` in ANDMASK and ORMASK."""
    n_pix = out["flux"].shape[1]
    for k in range(run_length):
        pix = np.minimum(bad.pix + k, n_pix - 1)
        out["andmask"][bad.rows, pix] |= MASK_BAD_PIXEL
        out["ormask"][bad.rows, pix] |= MASK_BAD_PIXEL
        out["flux"][bad.rows, pix] = 0.0
        out["ivar"][bad.rows, pix] = 0.0


# --------------------------------------------------------------------------------------
# The observed spectra
# --------------------------------------------------------------------------------------


def _empty_outputs(n: int, n_pix: int, return_truth: bool) -> dict[str, np.ndarray]:
    out = {
        "flux": np.empty((n, n_pix), dtype=np.float32),
        "ivar": np.empty((n, n_pix), dtype=np.float32),
        "mask": np.zeros((n, n_pix), dtype=bool),
        "andmask": np.zeros((n, n_pix), dtype=np.int32),
        "ormask": np.zeros((n, n_pix), dtype=np.int32),
    }
    if return_truth:
        for key in ("flux_clean", "continuum", "telluric"):
            out[key] = np.empty((n, n_pix), dtype=np.float32)
        out["cosmic"] = np.zeros((n, n_pix), dtype=bool)
    return out


def _observe_rows(
    sl: slice,
    out: dict[str, np.ndarray],
    model: DomainModel,
    params: np.ndarray,
    wave: np.ndarray,
    cond: _Conditions,
    basis: tuple[np.ndarray, np.ndarray],
    band: np.ndarray,
    noiseless: bool,
) -> None:
    """Simulate the rows ``sl`` into ``out``: the noiseless observed-frame flux (calibration
    residual on the `_fluxcal_basis` ``basis``), then (unless ``noiseless``) noise at the S/N
    measured in the ``band`` [P] pixels."""
    cfg = model.cfg
    lines, wave_rest = _doppler_lines(model, params[sl], cond.rv_true[sl], wave)
    cont = _calibrated_continuum(params[sl], wave_rest, cfg.gap, cond, sl, basis)
    trans = _telluric_transmission(model.telluric, cond.airmass[sl], cond.water[sl])
    clean = cont * lines * trans
    if "flux_clean" in out:
        out["continuum"][sl] = cont
        out["telluric"][sl] = trans
        out["flux_clean"][sl] = clean
    if noiseless:
        out["flux"][sl] = clean
        out["ivar"][sl] = 1.0
        return
    out["flux"][sl], var = _add_noise(clean, band, cond.snr[sl], cond.noise_seeds[sl], cfg.noise)
    np.divide(np.float32(cfg.noise.ivar_scale), var, out=out["ivar"][sl])


def observed_spectra(
    params: np.ndarray,
    wave: np.ndarray,
    cfg: MockSettings | None = None,
    rng: np.random.Generator | None = None,
    noiseless: bool = False,
    snr: np.ndarray | float | None = None,
    rv: np.ndarray | float | None = None,
    return_truth: bool = False,
) -> dict[str, np.ndarray]:
    """Spectra of the observed domain, as a survey pipeline would deliver them.

    Parameters
    ----------
    params : float [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    wave : float [P]
        Output wavelengths [Å, vacuum], increasing: the observed-frame pixel grid (the
        rest frame when ``noiseless``).
    cfg : MockSettings, optional
        Mock settings; defaults to ``MockSettings()``.
    rng : numpy.random.Generator, optional
        Source of the per-spectrum randomness; required unless ``noiseless``.
    noiseless : bool
        Return the oracle templates: systematic gap only (mis-calibration, missing lines,
        blue deficit, observed LSF, mean tellurics), rest frame, no noise.
    snr : float or float [N], optional
        Impose the S/N instead of drawing it (the other draws are unchanged).
    rv : float or float [N], optional
        Impose the true RV [km/s] instead of drawing it.
    return_truth : bool
        Also return the noiseless observed-frame flux and its ingredients.

    Returns
    -------
    out : dict
        ``flux`` float32 [N, P]: counts (0 in bad-pixel runs, spikes at cosmic rays).
        ``ivar`` float32 [N, P]: inverse variance, 0 where masked (ones when noiseless).
        ``mask`` bool [N, P]: True where the pipeline flags a pixel (ivar 0).
        ``andmask``, ``ormask`` int32 [N, P]: LAMOST-like bits (`MASK_BAD_PIXEL`,
        `MASK_COSMIC`).
        ``snr`` [N]: S/N per pixel in ``cfg.noise.snr_band`` (inf when noiseless).
        ``rv_true`` [N]: true RV [km/s]. ``z_header``, ``z_err`` [N]: the pipeline's
        redshift and its error. ``airmass``, ``water``, ``flux_scale`` [N]: conditions.
        With ``return_truth``: ``flux_clean`` float32 [N, P] (before noise, masks and
        cosmic rays), ``continuum`` float32 [N, P] (continuum x calibration x
        brightness, without lines or tellurics), ``telluric`` float32 [N, P]
        (transmission), ``cosmic`` bool [N, P] (pixels hit, flagged or not).
    """
    cfg = mock_settings(cfg)
    params, wave = check_inputs(params, wave, cfg)
    n, n_pix = params.shape[0], wave.size
    band = (wave >= cfg.noise.snr_band[0]) & (wave <= cfg.noise.snr_band[1])
    if not noiseless:
        if rng is None:
            raise InputError("observed_spectra needs rng unless noiseless=True")
        if not band.any():
            raise InputError(f"no pixel of wave lies in cfg.noise.snr_band {cfg.noise.snr_band}")
    model = build_model(cfg, wave, observed=True)
    if noiseless:
        cond = _noiseless_conditions(n, cfg)
    else:
        cond = _drawn_conditions(rng, n, n_pix, cfg, snr, rv)
    basis = _fluxcal_basis(wave, cfg)
    out = _empty_outputs(n, n_pix, return_truth)

    def work(sl: slice) -> None:
        _observe_rows(sl, out, model, params, wave, cond, basis, band, noiseless)

    for _ in map_chunks(work, n, cfg):
        pass
    if not noiseless:
        _add_cosmic_rays(out, cond.cosmics, cfg)
        _mask_bad_pixels(out, cond.bad, cfg.mask.run_length)
        out["mask"] = (out["ivar"] == 0) | (out["andmask"] != 0)
    out.update(cond.scalars())
    return out


def band_snr(
    flux: np.ndarray, ivar: np.ndarray, wave: np.ndarray, band: tuple[float, float]
) -> np.ndarray:
    """Median S/N per pixel in a wavelength band (as in the LAMOST SNRG ... header keys).

    Parameters
    ----------
    flux : float [N, P]
        Fluxes (noiseless ones give the expected S/N).
    ivar : float [N, P]
        Inverse variances; pixels with ivar 0 are ignored.
    wave : float [P]
        Wavelengths [Å].
    band : (float, float)
        Band limits [Å].

    Returns
    -------
    snr : float64 [N]
        Median of ``flux sqrt(ivar)`` over the good pixels of the band; 0 where none.
    """
    sel = (wave >= band[0]) & (wave <= band[1])
    out = np.zeros(flux.shape[0])
    if not sel.any():
        return out
    f = np.asarray(flux[:, sel], dtype=np.float64)
    iv = np.asarray(ivar[:, sel], dtype=np.float64)
    s = np.where(iv > 0, f * np.sqrt(iv), np.nan)
    good = np.isfinite(s).any(axis=1)
    out[good] = np.nanmedian(s[good], axis=1)
    return out
