"""Configuration of the mock survey: every ingredient of the synthetic-observed gap is a knob.

The configuration is plain data (an ``ml_collections.ConfigDict``). `default_mock_config`
returns the defaults, each documented by the comment beside it; `validate_mock_config`
checks a (possibly edited) configuration and raises ``ValueError`` naming the offending key.

Wavelengths are vacuum [Å], velocities [km/s], temperatures [K], gravities and abundances
[dex]. Seeds are integers: ``seed`` drives the per-spectrum draws of a mock survey (stellar
parameters, S/N, RV, noise ...), ``gap.seed`` the fixed systematic differences between the
two domains (drawn once, shared by every spectrum), ``features.forest_seed`` the built-in
weak-line list that both domains share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import ml_collections

from sost_jax.errors import InputError

__all__ = ["default_mock_config", "validate_mock_config"]


def _telluric_band(species: str, start: float, end: float, tau: float, head: bool) -> dict:
    return {"species": species, "start": start, "end": end, "tau": tau, "head": head}


def default_mock_config() -> ml_collections.ConfigDict:
    """Default configuration of the mock survey.

    Returns
    -------
    cfg : ml_collections.ConfigDict
        Nested configuration; see the comments in the source for the meaning and unit of
        each key. Edit a copy and pass it to `validate_mock_config` before use.
    """
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0  # Default seed of the per-spectrum draws (parameters, S/N, RV, noise ...).
    cfg.chunk_size = 256  # Spectra simulated at once; bounds memory, results do not depend on it.
    cfg.num_threads = 0  # Threads working on chunks in parallel; 0: one per available CPU.

    # --- Internal wavelength grids -------------------------------------------------------
    cfg.wave = ml_collections.ConfigDict()
    cfg.wave.fine_min = 3600.0  # Start of the internal log-lambda grid [Å, vacuum].
    cfg.wave.fine_max = 9300.0  # End of the internal log-lambda grid [Å, vacuum].
    cfg.wave.fine_dv = 20.0  # Pixel size of the internal grid [km/s]; ~4 px per LSF sigma.
    cfg.wave.out_min = 3900.0  # Default output grid (`default_wave`): first pixel [Å].
    cfg.wave.out_max = 8699.0  # Default output grid: last pixel [Å].
    cfg.wave.out_step = 1.0  # Default output grid: linear step [Å] (4800 px by default).

    # --- Stellar parameter distribution (`sample_parameters`) ---------------------------
    p = ml_collections.ConfigDict()
    # Mixture weights of the populations (normalised internally, must not all be zero).
    p.weights = ml_collections.ConfigDict(
        {
            "dwarf": 0.44,  # Main-sequence F/G/K dwarfs, Teff 4000-7000 K on the MS relation.
            "red_clump": 0.18,  # Core-helium burning giants, ~4700 K, log g ~2.4.
            "rgb": 0.17,  # Red-giant branch, 3700-5200 K, log g 0.2-3.6 along a track.
            "subgiant": 0.10,  # Subgiants, 5000-6300 K, log g 3.5-4.1.
            "hot": 0.05,  # Hot F/A-type dwarfs, 6800-8000 K.
            "m_dwarf": 0.06,  # M dwarfs, 3500-4000 K, log g ~4.7.
        }
    )
    p.feh_mean = -0.2  # Mean [Fe/H] of the disc component [dex].
    p.feh_sigma = 0.3  # Scatter of the disc [Fe/H] [dex].
    p.halo_fraction = 0.06  # Fraction drawn from the metal-poor tail (twice that in giants).
    p.halo_feh_mean = -1.3  # Mean [Fe/H] of the metal-poor tail [dex].
    p.halo_feh_sigma = 0.5  # Scatter of the metal-poor tail [dex].
    p.teff_range = [3500.0, 8000.0]  # Parameters are clipped to these ranges [K].
    p.logg_range = [0.0, 5.0]  # [dex]
    p.feh_range = [-2.5, 0.5]  # [dex]
    cfg.params = p

    # --- Regular "synthetic" grid (`grid_parameters(**cfg.grid)`) -------------------------
    cfg.grid = ml_collections.ConfigDict()
    cfg.grid.teff_step = 250.0  # [K]
    cfg.grid.logg_step = 0.5  # [dex]
    cfg.grid.feh_step = 0.5  # [dex]
    cfg.grid.teff_range = [3500.0, 8000.0]  # [K], both ends included when on the step.
    cfg.grid.logg_range = [0.0, 5.0]  # [dex]
    cfg.grid.feh_range = [-2.5, 0.5]  # [dex]

    # --- Built-in features (see `features.py`) ------------------------------------------
    cfg.features = ml_collections.ConfigDict()
    cfg.features.forest_seed = 1234  # Seed of the built-in weak-line "forest" (both domains).
    cfg.features.n_forest = 600  # Number of weak lines in the forest.
    cfg.features.line_sigma = 25.0  # Intrinsic Gaussian width of metal lines [km/s].

    # --- Synthetic domain -------------------------------------------------------------
    cfg.synthetic = ml_collections.ConfigDict()
    cfg.synthetic.resolution = 1800.0  # R = lambda / FWHM of the Gaussian LSF.

    # --- Observed domain: line-spread function -----------------------------------------
    cfg.lsf = ml_collections.ConfigDict()
    cfg.lsf.resolution = 1700.0  # R = lambda / FWHM of the core of the observed LSF.
    cfg.lsf.h4 = 0.04  # Gauss-Hermite h4 of the core (>0: peakier with broader shoulders).
    cfg.lsf.lorentz_fraction = 0.05  # Flux fraction in a Lorentzian of the same FWHM.
    cfg.lsf.halfwidth = 12.0  # Kernel truncated at this many core sigmas each side.

    # --- Observed domain: the systematic gap (fixed per gap.seed) -----------------------
    cfg.gap = ml_collections.ConfigDict()
    cfg.gap.seed = 2024  # Seed of the systematic differences; same for every spectrum.
    cfg.gap.miscal_rms = 0.15  # Log-normal rms of per-feature strength mis-calibration.
    cfg.gap.miscal_teff_slope = 0.05  # rms of its slope, in ln(strength) per 1000 K.
    cfg.gap.forest_rms = 0.3  # Log-normal rms of per-line mis-calibration of the forest.
    cfg.gap.n_missing = 120  # Weak lines present only in the observed domain.
    cfg.gap.missing_strength = 0.15  # Typical central optical depth of those lines.
    cfg.gap.blue_deficit = 0.05  # Fractional flux deficit of observed stars in the blue.
    cfg.gap.blue_deficit_wave = 4300.0  # Wavelength where the deficit is half-depth [Å].
    cfg.gap.blue_deficit_width = 250.0  # Logistic width of the deficit's transition [Å].

    # --- Observed domain: tellurics (observed frame) -------------------------------------
    cfg.tellurics = ml_collections.ConfigDict()
    # Bands: species ('o2' scales with airmass, 'h2o' with airmass x water), vacuum start and
    # end [Å], peak optical depth at airmass 1 before the LSF, and whether it has a sharp
    # blue head (O2) or soft symmetric edges (H2O).
    cfg.tellurics.bands = ml_collections.ConfigDict(
        {
            "o2_a": _telluric_band("o2", 7594.0, 7621.0, 0.8, True),
            "o2_b": _telluric_band("o2", 6867.0, 6884.0, 0.35, True),
            "h2o_7200": _telluric_band("h2o", 7160.0, 7340.0, 0.05, False),
            "h2o_8200": _telluric_band("h2o", 8130.0, 8350.0, 0.06, False),
            "h2o_6500": _telluric_band("h2o", 6470.0, 6580.0, 0.015, False),
            "h2o_8950": _telluric_band("h2o", 8920.0, 9200.0, 0.12, False),
        }
    )
    cfg.tellurics.airmass_min = 1.0  # Airmass drawn uniformly in [min, max] per spectrum.
    cfg.tellurics.airmass_max = 1.8
    cfg.tellurics.water_sigma = 0.4  # Log-normal scatter of precipitable water (median 1).

    # --- Observed domain: flux calibration residuals (per spectrum) ----------------------
    cfg.fluxcal = ml_collections.ConfigDict()
    cfg.fluxcal.amplitude = 0.07  # Expected rms of the log multiplicative residual.
    cfg.fluxcal.order = 3  # Highest Legendre order of the residual (degree 1..order).
    cfg.fluxcal.wave_min = 3700.0  # Span mapped onto [-1, 1] for the polynomials [Å].
    cfg.fluxcal.wave_max = 9100.0
    cfg.fluxcal.dichroic_wave = 5900.0  # Blue/red arm join [Å].
    cfg.fluxcal.dichroic_width = 20.0  # Width of the smooth step at the join [Å].
    cfg.fluxcal.dichroic_amplitude = 0.02  # rms of the fractional step at the join.
    cfg.fluxcal.scale_sigma_dex = 0.3  # rms of log10 overall brightness (counts) per star.

    # --- Observed domain: noise ---------------------------------------------------------
    cfg.noise = ml_collections.ConfigDict()
    cfg.noise.snr_min = 10.0  # S/N per pixel (median over snr_band) drawn in [min, max].
    cfg.noise.snr_max = 300.0
    cfg.noise.snr_power = 1.3  # p(S/N) ~ S/N**-power (1: log-uniform; >1: faint-heavy).
    cfg.noise.snr_band = [4000.0, 5500.0]  # Band defining the S/N ("g band") [Å].
    cfg.noise.background = 0.1  # Sky+read variance, in units of the band's median flux.
    cfg.noise.ivar_scale = 1.0  # Reported ivar = true ivar x this (pipeline error bias).

    # --- Observed domain: bad pixels and cosmic rays -------------------------------------
    cfg.mask = ml_collections.ConfigDict()
    cfg.mask.bad_fraction = 0.002  # Expected fraction of pixels in bad runs (ivar 0, flux 0).
    cfg.mask.run_length = 4  # Length of each bad run [pixels].
    cfg.cosmic = ml_collections.ConfigDict()
    cfg.cosmic.rate = 0.5  # Expected cosmic-ray hits per 1000 output pixels.
    cfg.cosmic.amp_min = 5.0  # Hit amplitude, log-uniform in [min, max] noise sigmas.
    cfg.cosmic.amp_max = 100.0
    cfg.cosmic.flag_probability = 0.7  # Chance that the pipeline flags a hit (ivar 0).

    # --- Observed domain: radial velocities ----------------------------------------------
    cfg.rv = ml_collections.ConfigDict()
    cfg.rv.mean = 0.0  # Mean true heliocentric RV [km/s].
    cfg.rv.sigma = 40.0  # Scatter of the true RV [km/s].
    cfg.rv.residual_sigma = 4.0  # Error of the header redshift Z, as a velocity [km/s].
    return cfg


def _get(cfg: Any, path: str) -> Any:
    node = cfg
    for part in path.split("."):
        try:
            node = node[part]
        except (KeyError, AttributeError, TypeError) as err:
            raise InputError(f"mock config: missing key '{path}'") from err
    return node


def _number(cfg: Any, path: str) -> float:
    value = _get(cfg, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"mock config: '{path}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"mock config: '{path}' must be finite, got {value!r}")
    return float(value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(f"mock config: {message}")


def _positive(cfg: Any, paths: Iterable[str]) -> None:
    for path in paths:
        _check(_number(cfg, path) > 0, f"'{path}' must be > 0, got {_get(cfg, path)!r}")


def _nonnegative(cfg: Any, paths: Iterable[str]) -> None:
    for path in paths:
        _check(_number(cfg, path) >= 0, f"'{path}' must be >= 0, got {_get(cfg, path)!r}")


def _fraction(cfg: Any, paths: Iterable[str]) -> None:
    for path in paths:
        value = _number(cfg, path)
        _check(0.0 <= value <= 1.0, f"'{path}' must lie in [0, 1], got {value!r}")


def _range(cfg: Any, path: str, strict: bool = True) -> tuple[float, float]:
    value = _get(cfg, path)
    _check(
        isinstance(value, tuple | list) and len(value) == 2,
        f"'{path}' must be a (low, high) pair, got {value!r}",
    )
    low, high = (float(v) for v in value)
    _check(math.isfinite(low) and math.isfinite(high), f"'{path}' must be finite, got {value!r}")
    _check(low < high if strict else low <= high, f"'{path}' needs low < high, got {value!r}")
    return low, high


def validate_mock_config(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Check a mock configuration and raise a clear error on nonsense.

    Parameters
    ----------
    cfg : ml_collections.ConfigDict
        A configuration shaped like `default_mock_config`.

    Returns
    -------
    cfg : ml_collections.ConfigDict
        The same object, unchanged, for chaining.

    Raises
    ------
    ValueError
        Naming the first offending key and the accepted values (missing keys, non-finite
        numbers, S/N <= 0, resolutions <= 0, fractions outside [0, 1], empty ranges ...).
    """
    for path in ("seed", "gap.seed", "features.forest_seed"):
        value = _get(cfg, path)
        _check(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"'{path}' must be a non-negative integer, got {value!r}",
        )
    value = _get(cfg, "num_threads")
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        f"'num_threads' must be an integer >= 0 (0: all CPUs), got {value!r}",
    )
    for path in ("chunk_size", "fluxcal.order", "mask.run_length"):
        value = _get(cfg, path)
        _check(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            f"'{path}' must be an integer >= 1, got {value!r}",
        )
    for path in ("features.n_forest", "gap.n_missing"):
        value = _get(cfg, path)
        _check(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"'{path}' must be a non-negative integer, got {value!r}",
        )

    _positive(cfg, ["wave.fine_min", "wave.fine_dv", "wave.out_min", "wave.out_step"])
    _check(
        _number(cfg, "wave.fine_max") > _number(cfg, "wave.fine_min"),
        "'wave.fine_max' must exceed 'wave.fine_min'",
    )
    _check(
        _number(cfg, "wave.out_max") > _number(cfg, "wave.out_min"),
        "'wave.out_max' must exceed 'wave.out_min'",
    )
    _check(
        cfg.wave.fine_min < cfg.wave.out_min and cfg.wave.out_max < cfg.wave.fine_max,
        "the default output grid (wave.out_min..out_max) must lie inside the internal grid "
        "(wave.fine_min..fine_max)",
    )
    _check(cfg.wave.fine_dv <= 100.0, "'wave.fine_dv' must be <= 100 km/s to sample the LSF")

    weights = _get(cfg, "params.weights")
    total = 0.0
    for name in ("dwarf", "red_clump", "rgb", "subgiant", "hot", "m_dwarf"):
        _nonnegative(cfg, [f"params.weights.{name}"])
        total += float(weights[name])
    _check(total > 0, "'params.weights' must not all be zero")
    _positive(cfg, ["params.feh_sigma", "params.halo_feh_sigma"])
    _number(cfg, "params.feh_mean")
    _number(cfg, "params.halo_feh_mean")
    _fraction(cfg, ["params.halo_fraction"])
    _check(2 * cfg.params.halo_fraction <= 1, "'params.halo_fraction' must be <= 0.5")
    for path in ("params.teff_range", "params.logg_range", "params.feh_range"):
        _range(cfg, path)
    t_low, _ = _range(cfg, "params.teff_range")
    _check(t_low > 0, "'params.teff_range' must be positive temperatures [K]")

    _positive(cfg, ["grid.teff_step", "grid.logg_step", "grid.feh_step"])
    for path in ("grid.teff_range", "grid.logg_range", "grid.feh_range"):
        _range(cfg, path, strict=False)
    _check(cfg.grid.teff_range[0] > 0, "'grid.teff_range' must be positive temperatures [K]")

    _positive(cfg, ["features.line_sigma", "synthetic.resolution", "lsf.resolution"])
    _positive(cfg, ["lsf.halfwidth"])
    _check(cfg.lsf.halfwidth >= 3, "'lsf.halfwidth' must be >= 3 sigma")
    _number(cfg, "lsf.h4")
    _check(abs(cfg.lsf.h4) <= 0.2, "'lsf.h4' must lie in [-0.2, 0.2] to keep the LSF positive")
    _fraction(cfg, ["lsf.lorentz_fraction"])

    _nonnegative(
        cfg,
        [
            "gap.miscal_rms",
            "gap.miscal_teff_slope",
            "gap.forest_rms",
            "gap.missing_strength",
            "tellurics.water_sigma",
            "fluxcal.amplitude",
            "fluxcal.dichroic_amplitude",
            "fluxcal.scale_sigma_dex",
            "noise.background",
            "cosmic.rate",
        ],
    )
    _fraction(cfg, ["gap.blue_deficit", "mask.bad_fraction", "cosmic.flag_probability"])
    _positive(cfg, ["gap.blue_deficit_wave", "gap.blue_deficit_width"])

    bands = _get(cfg, "tellurics.bands")
    for name in bands:
        band = bands[name]
        prefix = f"tellurics.bands.{name}"
        _check(
            band["species"] in ("o2", "h2o"),
            f"'{prefix}.species' must be 'o2' or 'h2o', got {band['species']!r}",
        )
        _positive(cfg, [f"{prefix}.start", f"{prefix}.end"])
        _nonnegative(cfg, [f"{prefix}.tau"])
        _check(band["end"] > band["start"], f"'{prefix}': end must exceed start")
    _positive(cfg, ["tellurics.airmass_min"])
    _check(cfg.tellurics.airmass_min >= 1.0, "'tellurics.airmass_min' must be >= 1")
    _check(
        _number(cfg, "tellurics.airmass_max") >= cfg.tellurics.airmass_min,
        "'tellurics.airmass_max' must be >= 'tellurics.airmass_min'",
    )

    _positive(cfg, ["fluxcal.wave_min", "fluxcal.dichroic_wave", "fluxcal.dichroic_width"])
    _check(
        _number(cfg, "fluxcal.wave_max") > cfg.fluxcal.wave_min,
        "'fluxcal.wave_max' must exceed 'fluxcal.wave_min'",
    )

    _positive(cfg, ["noise.snr_min", "noise.snr_max", "noise.ivar_scale"])
    _check(
        cfg.noise.snr_max >= cfg.noise.snr_min,
        f"'noise.snr_max' ({cfg.noise.snr_max}) must be >= 'noise.snr_min' ({cfg.noise.snr_min})",
    )
    _number(cfg, "noise.snr_power")
    low, _ = _range(cfg, "noise.snr_band")
    _check(low > 0, "'noise.snr_band' must be positive wavelengths [Å]")

    _positive(cfg, ["cosmic.amp_min"])
    _check(
        _number(cfg, "cosmic.amp_max") >= cfg.cosmic.amp_min,
        "'cosmic.amp_max' must be >= 'cosmic.amp_min'",
    )
    _number(cfg, "rv.mean")
    _nonnegative(cfg, ["rv.sigma", "rv.residual_sigma"])
    _check(
        abs(cfg.rv.mean) + 5 * cfg.rv.sigma < 2000.0,
        "'rv.mean'/'rv.sigma' too large: |mean| + 5 sigma must stay below 2000 km/s",
    )
    return cfg
