"""The observed domain of the mock survey: what a survey pipeline would deliver.

The noiseless model of `sost_jax.mock.simulate` times the synthetic-to-observed gap, then
the instrument and the sky: line-spread function, radial velocity, flux calibration,
tellurics, noise at a drawn S/N, bad pixels and cosmic rays.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError
from sost_jax.mock.simulate import (  # the noiseless model this module observes
    _MAX_RV,
    MASK_BAD_PIXEL,
    MASK_COSMIC,
    _build_model,
    _check_inputs,
    _config,
    _line_absorption,
    _log_continuum,
    _map_chunks,
    _sample,
)

__all__ = ["band_snr", "observed_spectra"]


def _log_blue_deficit(cfg: ml_collections.ConfigDict, wave_rest: np.ndarray) -> np.ndarray:
    """ln of the observed/model flux ratio from the blue deficit, in wave_rest's precision."""
    x = (wave_rest - wave_rest.dtype.type(cfg.gap.blue_deficit_wave)) / wave_rest.dtype.type(
        cfg.gap.blue_deficit_width
    )
    x = np.clip(x, -60.0, 60.0, out=x)
    return np.log1p(-wave_rest.dtype.type(cfg.gap.blue_deficit) / (1.0 + np.exp(x)))


def _draw_snr(rng: np.random.Generator, n: int, cfg: ml_collections.ConfigDict) -> np.ndarray:
    lo, hi, power = cfg.noise.snr_min, cfg.noise.snr_max, cfg.noise.snr_power
    u = rng.random(n)
    if hi == lo:
        return np.full(n, lo)
    if abs(power - 1.0) < 1e-9:
        return lo * (hi / lo) ** u
    e = 1.0 - power
    return (lo**e + u * (hi**e - lo**e)) ** (1.0 / e)


def _events(
    rng: np.random.Generator, counts: np.ndarray, n_pix: int, extra: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, pixel positions and ``extra`` uniform variates of Poisson-counted events."""
    rows = np.repeat(np.arange(counts.size), counts)
    pix = rng.integers(0, n_pix, rows.size)
    return rows, pix, rng.random((rows.size, extra))


def observed_spectra(
    params: np.ndarray,
    wave: np.ndarray,
    cfg: ml_collections.ConfigDict | None = None,
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
    cfg : ml_collections.ConfigDict, optional
        Mock configuration; defaults to `default_mock_config`.
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
    cfg = _config(cfg)
    params, wave = _check_inputs(params, wave, cfg)
    n, n_pix = params.shape[0], wave.size
    band = (wave >= cfg.noise.snr_band[0]) & (wave <= cfg.noise.snr_band[1])
    if not noiseless:
        if rng is None:
            raise InputError("observed_spectra needs rng unless noiseless=True")
        if not band.any():
            raise InputError(f"no pixel of wave lies in cfg.noise.snr_band {cfg.noise.snr_band}")
    model = _build_model(cfg, wave, observed=True)

    # Per-spectrum draws, all made up front so that chunking cannot change them.
    tel = cfg.tellurics
    order = cfg.fluxcal.order
    if noiseless:
        snr_v = np.full(n, np.inf)
        rv_true = np.zeros(n)
        z_header = np.zeros(n)
        z_err = np.zeros(n)
        airmass = np.full(n, 0.5 * (tel.airmass_min + tel.airmass_max))
        water = np.ones(n)
        scale = np.ones(n)
        coef = np.zeros((n, order))
        step = np.zeros(n)
    else:
        (rng_scalar,) = rng.spawn(1)
        snr_v = _draw_snr(rng_scalar, n, cfg)
        rv_true = np.clip(rng_scalar.normal(cfg.rv.mean, cfg.rv.sigma, n), -_MAX_RV, _MAX_RV)
        rv_meas = rv_true + rng_scalar.normal(0.0, cfg.rv.residual_sigma, n)
        airmass = rng_scalar.uniform(tel.airmass_min, tel.airmass_max, n)
        water = np.exp(tel.water_sigma * rng_scalar.standard_normal(n))
        scale = 10.0 ** (cfg.fluxcal.scale_sigma_dex * rng_scalar.standard_normal(n))
        degree = np.arange(1, order + 1)
        coef = rng_scalar.standard_normal((n, order))
        coef *= cfg.fluxcal.amplitude * np.sqrt((2 * degree + 1) / order)
        step = cfg.fluxcal.dichroic_amplitude * rng_scalar.standard_normal(n)
        cosmic_counts = rng_scalar.poisson(cfg.cosmic.rate * n_pix / 1000.0, n)
        cr_rows, cr_pix, cr_u = _events(rng_scalar, cosmic_counts, n_pix, 3)
        bad_counts = rng_scalar.poisson(cfg.mask.bad_fraction * n_pix / cfg.mask.run_length, n)
        bad_rows, bad_pix, _ = _events(rng_scalar, bad_counts, n_pix, 0)
        # One noise stream per spectrum, so that chunks can be simulated in any order.
        noise_seeds = rng_scalar.integers(0, 2**63 - 1, size=n, dtype=np.int64)
        if snr is not None:
            snr_v = np.broadcast_to(np.asarray(snr, dtype=np.float64), (n,)).copy()
            if np.any(~(snr_v > 0)):
                raise InputError("snr must be > 0")
        if rv is not None:
            rv_imposed = np.broadcast_to(np.asarray(rv, dtype=np.float64), (n,)).copy()
            if np.any(~(np.abs(rv_imposed) < _MAX_RV)):
                raise InputError(f"rv must be finite and |rv| < {_MAX_RV:.0f} km/s")
            rv_meas = rv_meas - rv_true + rv_imposed
            rv_true = rv_imposed
        z_header = rv_meas / C_KMS
        z_err = np.full(n, cfg.rv.residual_sigma / C_KMS)
    x = 2.0 * (wave - cfg.fluxcal.wave_min) / (cfg.fluxcal.wave_max - cfg.fluxcal.wave_min)
    legendre = np.polynomial.legendre.legvander(x - 1.0, order)[:, 1:].T  # [order, P]
    join = (wave - cfg.fluxcal.dichroic_wave) / cfg.fluxcal.dichroic_width
    join = 1.0 / (1.0 + np.exp(-np.clip(join, -60.0, 60.0))) - 0.5

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

    ln_wave = np.log(wave)
    tau_o2, tau_h2o = model.telluric

    def work(sl: slice) -> None:
        """Simulate the rows ``sl`` into ``out``."""
        p = params[sl]
        shift = np.log1p(rv_true[sl] / C_KMS)[:, None]  # observed = rest * (1 + v/c)
        lines = _sample(
            _line_absorption(model, p, observed=True),
            (ln_wave - shift - model.ln_fine0) / model.dln,
        )
        wave_rest = (wave * np.exp(-shift)).astype(np.float32)
        log_cont = _log_continuum(p, wave_rest)
        log_cont += _log_blue_deficit(cfg, wave_rest)
        log_cont += (coef[sl] @ legendre + step[sl, None] * join + np.log(scale[sl, None])).astype(
            np.float32
        )
        cont = np.exp(log_cont)
        am = airmass[sl, None].astype(np.float32)
        trans = np.exp(-am * (tau_o2 + water[sl, None].astype(np.float32) * tau_h2o))
        clean = cont * lines * trans
        if return_truth:
            out["continuum"][sl] = cont
            out["telluric"][sl] = trans
            out["flux_clean"][sl] = clean
        if noiseless:
            out["flux"][sl] = clean
            out["ivar"][sl] = 1.0
            return
        # Variance c (F + B): the median S/N over the band's pixels equals snr exactly,
        # because S/N is monotonic in F.
        med = np.maximum(np.median(clean[:, band], axis=1).astype(np.float64), 1e-30)
        background = cfg.noise.background * med
        c = med / (snr_v[sl] ** 2 * (1.0 + cfg.noise.background))
        var = np.maximum(clean, np.float32(0.0))
        var += background[:, None].astype(np.float32)
        var *= c[:, None].astype(np.float32)
        noise = np.empty_like(clean)
        for j, seed in enumerate(noise_seeds[sl]):
            np.random.Generator(np.random.PCG64(int(seed))).standard_normal(
                dtype=np.float32, out=noise[j]
            )
        noise *= np.sqrt(var)
        noise += clean
        out["flux"][sl] = noise
        np.divide(np.float32(cfg.noise.ivar_scale), var, out=out["ivar"][sl])

    for _ in _map_chunks(work, n, cfg):
        pass
    if noiseless:
        out.update(_scalars(snr_v, rv_true, z_header, z_err, airmass, water, scale))
        return out

    # Cosmic rays: spikes of amp_min..amp_max local sigmas, sometimes on two pixels.
    flux, ivar = out["flux"], out["ivar"]
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
        if return_truth:
            out["cosmic"][rows, pix] = True
    for rows, pix in (
        (cr_rows[flagged], cr_pix[flagged]),
        (cr_rows[flagged & double], np.minimum(cr_pix[flagged & double] + 1, n_pix - 1)),
    ):
        out["ormask"][rows, pix] |= MASK_COSMIC
        ivar[rows, pix] = 0.0

    # Bad-pixel runs: no data.
    for k in range(cfg.mask.run_length):
        pix = np.minimum(bad_pix + k, n_pix - 1)
        out["andmask"][bad_rows, pix] |= MASK_BAD_PIXEL
        out["ormask"][bad_rows, pix] |= MASK_BAD_PIXEL
        flux[bad_rows, pix] = 0.0
        ivar[bad_rows, pix] = 0.0
    out["mask"] = (ivar == 0) | (out["andmask"] != 0)
    out.update(_scalars(snr_v, rv_true, z_header, z_err, airmass, water, scale))
    return out


def _scalars(snr, rv_true, z_header, z_err, airmass, water, scale) -> dict[str, np.ndarray]:
    return {
        "snr": snr,
        "rv_true": rv_true,
        "z_header": z_header,
        "z_err": z_err,
        "airmass": airmass,
        "water": water,
        "flux_scale": scale,
    }


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
