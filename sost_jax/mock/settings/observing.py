"""Settings of the observed domain of the mock survey: sky, instrument and pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import ClassVar

from sost_jax.mock.settings.checks import check_types
from sost_jax.settings import Settings, at_least, fraction, nonnegative, pair, positive, require

__all__ = [
    "CosmicSettings",
    "FluxCalSettings",
    "MaskSettings",
    "NoiseSettings",
    "RvSettings",
    "TelluricBand",
    "TelluricSettings",
]


@dataclass(frozen=True)
class TelluricBand(Settings):
    """One telluric band, before the LSF (checked by `TelluricSettings`, which names it).

    Attributes
    ----------
    species : str
        "o2" (scales with airmass) or "h2o" (with airmass x water).
    start, end : float
        Vacuum start and end of the band [Å], > 0, end > start.
    tau : float
        Peak optical depth at airmass 1, >= 0.
    head : bool
        A sharp blue head (O2) rather than soft symmetric edges (H2O).
    """

    section: ClassVar[str] = "mock.tellurics.bands.*"

    species: str
    start: float
    end: float
    tau: float
    head: bool

    def check(self, where: str) -> None:
        """Raise `InputError` naming ``where.key`` for a value that cannot work."""
        check_types(self, where)
        require(
            self.species in ("o2", "h2o"),
            f"{where}.species",
            f"must be 'o2' or 'h2o', got {self.species!r}",
        )
        for name in ("start", "end"):
            value = getattr(self, name)
            require(value > 0, f"{where}.{name}", f"must be > 0, got {value!r}")
        require(self.tau >= 0, f"{where}.tau", f"must be >= 0, got {self.tau!r}")
        require(self.end > self.start, where, "end must exceed start")


def _default_bands() -> dict[str, TelluricBand]:
    return {
        "o2_a": TelluricBand("o2", 7594.0, 7621.0, 0.8, True),
        "o2_b": TelluricBand("o2", 6867.0, 6884.0, 0.35, True),
        "h2o_7200": TelluricBand("h2o", 7160.0, 7340.0, 0.05, False),
        "h2o_8200": TelluricBand("h2o", 8130.0, 8350.0, 0.06, False),
        "h2o_6500": TelluricBand("h2o", 6470.0, 6580.0, 0.015, False),
        "h2o_8950": TelluricBand("h2o", 8920.0, 9200.0, 0.12, False),
    }


@dataclass(frozen=True)
class TelluricSettings(Settings):
    """Observed domain: tellurics (observed frame).

    Attributes
    ----------
    bands : dict of str to TelluricBand
        The bands by name (a mapping of a band's keys is taken and checked).
    airmass_min, airmass_max : float
        Airmass drawn uniformly in [min, max] per spectrum; 1 <= min <= max.
    water_sigma : float
        Log-normal scatter of precipitable water (median 1), >= 0.
    """

    section: ClassVar[str] = "mock.tellurics"

    bands: dict[str, TelluricBand] = field(default_factory=_default_bands)
    airmass_min: float = 1.0
    airmass_max: float = 1.8
    water_sigma: float = 0.4

    def __post_init__(self) -> None:
        require(isinstance(self.bands, Mapping), "mock.tellurics.bands", "must be a mapping")
        bands = {}
        for name, band in self.bands.items():
            where = f"{self.section}.bands.{name}"
            if isinstance(band, Mapping):
                missing = [f.name for f in fields(TelluricBand) if f.name not in band]
                require(not missing, where, f"misses the keys {missing}")
                band = TelluricBand.from_dict(band, where)
            require(isinstance(band, TelluricBand), where, f"must be a band, got {band!r}")
            band.check(where)
            bands[name] = band
        object.__setattr__(self, "bands", bands)
        check_types(self, self.section)
        positive(self, "airmass_min")
        require(self.airmass_min >= 1.0, "mock.tellurics.airmass_min", "must be >= 1")
        require(
            self.airmass_max >= self.airmass_min,
            "mock.tellurics.airmass_max",
            "must be >= mock.tellurics.airmass_min",
        )
        nonnegative(self, "water_sigma")


@dataclass(frozen=True)
class FluxCalSettings(Settings):
    """Observed domain: flux calibration residuals (per spectrum).

    Attributes
    ----------
    amplitude : float
        Expected rms of the log multiplicative residual, >= 0.
    order : int
        Highest Legendre order of the residual (degree 1..order), >= 1.
    wave_min, wave_max : float
        Span mapped onto [-1, 1] for the polynomials [Å], 0 < min < max.
    dichroic_wave : float
        Blue/red arm join [Å], > 0.
    dichroic_width : float
        Width of the smooth step at the join [Å], > 0.
    dichroic_amplitude : float
        rms of the fractional step at the join, >= 0.
    scale_sigma_dex : float
        rms of log10 overall brightness (counts) per star [dex], >= 0.
    """

    section: ClassVar[str] = "mock.fluxcal"

    amplitude: float = 0.07
    order: int = 3
    wave_min: float = 3700.0
    wave_max: float = 9100.0
    dichroic_wave: float = 5900.0
    dichroic_width: float = 20.0
    dichroic_amplitude: float = 0.02
    scale_sigma_dex: float = 0.3

    def __post_init__(self) -> None:
        check_types(self, self.section)
        at_least(self, 1, "order")
        nonnegative(self, "amplitude", "dichroic_amplitude", "scale_sigma_dex")
        positive(self, "wave_min", "dichroic_wave", "dichroic_width")
        require(self.wave_max > self.wave_min, "mock.fluxcal.wave_max", "must exceed wave_min")


@dataclass(frozen=True)
class NoiseSettings(Settings):
    """Observed domain: noise.

    Attributes
    ----------
    snr_min, snr_max : float
        S/N per pixel (median over ``snr_band``) drawn in [min, max]; 0 < min <= max.
    snr_power : float
        p(S/N) ~ S/N**-power (1: log-uniform; >1: faint-heavy).
    snr_band : (float, float)
        Band defining the S/N ("g band") [Å], positive.
    background : float
        Sky+read variance, in units of the band's median flux, >= 0.
    ivar_scale : float
        Reported ivar = true ivar x this (pipeline error bias), > 0.
    """

    section: ClassVar[str] = "mock.noise"

    snr_min: float = 10.0
    snr_max: float = 300.0
    snr_power: float = 1.3
    snr_band: tuple[float, ...] = (4000.0, 5500.0)
    background: float = 0.1
    ivar_scale: float = 1.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "snr_min", "snr_max", "ivar_scale")
        require(
            self.snr_max >= self.snr_min,
            "mock.noise.snr_max",
            f"({self.snr_max}) must be >= mock.noise.snr_min ({self.snr_min})",
        )
        low, _ = pair(self, "snr_band")
        require(low > 0, "mock.noise.snr_band", "must be positive wavelengths [Å]")
        nonnegative(self, "background")


@dataclass(frozen=True)
class MaskSettings(Settings):
    """Observed domain: bad pixels.

    Attributes
    ----------
    bad_fraction : float
        Expected fraction of pixels in bad runs (ivar 0, flux 0), in [0, 1].
    run_length : int
        Length of each bad run [pixels], >= 1.
    """

    section: ClassVar[str] = "mock.mask"

    bad_fraction: float = 0.002
    run_length: int = 4

    def __post_init__(self) -> None:
        check_types(self, self.section)
        fraction(self, "bad_fraction")
        at_least(self, 1, "run_length")


@dataclass(frozen=True)
class CosmicSettings(Settings):
    """Observed domain: cosmic rays.

    Attributes
    ----------
    rate : float
        Expected cosmic-ray hits per 1000 output pixels, >= 0.
    amp_min, amp_max : float
        Hit amplitude, log-uniform in [min, max] noise sigmas; 0 < min <= max.
    flag_probability : float
        Chance that the pipeline flags a hit (ivar 0), in [0, 1].
    """

    section: ClassVar[str] = "mock.cosmic"

    rate: float = 0.5
    amp_min: float = 5.0
    amp_max: float = 100.0
    flag_probability: float = 0.7

    def __post_init__(self) -> None:
        check_types(self, self.section)
        nonnegative(self, "rate")
        positive(self, "amp_min")
        require(
            self.amp_max >= self.amp_min, "mock.cosmic.amp_max", "must be >= mock.cosmic.amp_min"
        )
        fraction(self, "flag_probability")


@dataclass(frozen=True)
class RvSettings(Settings):
    """Observed domain: radial velocities (|mean| + 5 sigma below 2000 km/s).

    Attributes
    ----------
    mean : float
        Mean true heliocentric RV [km/s].
    sigma : float
        Scatter of the true RV [km/s], >= 0.
    residual_sigma : float
        Error of the header redshift Z, as a velocity [km/s], >= 0.
    """

    section: ClassVar[str] = "mock.rv"

    mean: float = 0.0
    sigma: float = 40.0
    residual_sigma: float = 4.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        nonnegative(self, "sigma", "residual_sigma")
        require(
            abs(self.mean) + 5 * self.sigma < 2000.0,
            "mock.rv.mean/sigma",
            "too large: |mean| + 5 sigma must stay below 2000 km/s",
        )
