"""Settings of the two domains of the mock survey: features, LSFs and the systematic gap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sost_jax.mock.settings.checks import check_types
from sost_jax.settings import Settings, at_least, fraction, nonnegative, positive, require

__all__ = ["FeatureSettings", "GapSettings", "LsfSettings", "SyntheticSettings"]


@dataclass(frozen=True)
class FeatureSettings(Settings):
    """Built-in features (see `sost_jax.mock.features`).

    Attributes
    ----------
    forest_seed : int
        Seed (>= 0) of the built-in weak-line "forest" (both domains).
    n_forest : int
        Number of weak lines in the forest, >= 0.
    line_sigma : float
        Intrinsic Gaussian width of metal lines [km/s], > 0.
    """

    section: ClassVar[str] = "mock.features"

    forest_seed: int = 1234
    n_forest: int = 600
    line_sigma: float = 25.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        at_least(self, 0, "forest_seed", "n_forest")
        positive(self, "line_sigma")


@dataclass(frozen=True)
class SyntheticSettings(Settings):
    """Synthetic domain.

    Attributes
    ----------
    resolution : float
        R = lambda / FWHM of the Gaussian LSF, > 0.
    """

    section: ClassVar[str] = "mock.synthetic"

    resolution: float = 1800.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "resolution")


@dataclass(frozen=True)
class LsfSettings(Settings):
    """Observed domain: line-spread function.

    Attributes
    ----------
    resolution : float
        R = lambda / FWHM of the core of the observed LSF, > 0.
    h4 : float
        Gauss-Hermite h4 of the core (>0: peakier with broader shoulders), in [-0.2, 0.2].
    lorentz_fraction : float
        Flux fraction in a Lorentzian of the same FWHM, in [0, 1].
    halfwidth : float
        Kernel truncated at this many core sigmas each side, >= 3.
    """

    section: ClassVar[str] = "mock.lsf"

    resolution: float = 1700.0
    h4: float = 0.04
    lorentz_fraction: float = 0.05
    halfwidth: float = 12.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "resolution", "halfwidth")
        require(self.halfwidth >= 3, "mock.lsf.halfwidth", "must be >= 3 sigma")
        require(
            abs(self.h4) <= 0.2, "mock.lsf.h4", "must lie in [-0.2, 0.2] to keep the LSF positive"
        )
        fraction(self, "lorentz_fraction")


@dataclass(frozen=True)
class GapSettings(Settings):
    """Observed domain: the systematic gap (fixed per ``seed``).

    Attributes
    ----------
    seed : int
        Seed (>= 0) of the systematic differences; the same for every spectrum.
    miscal_rms : float
        Log-normal rms of per-feature strength mis-calibration, >= 0.
    miscal_teff_slope : float
        rms of its slope, in ln(strength) per 1000 K, >= 0.
    forest_rms : float
        Log-normal rms of per-line mis-calibration of the forest, >= 0.
    n_missing : int
        Weak lines present only in the observed domain, >= 0.
    missing_strength : float
        Typical central optical depth of those lines, >= 0.
    blue_deficit : float
        Fractional flux deficit of observed stars in the blue, in [0, 1].
    blue_deficit_wave : float
        Wavelength where the deficit is half-depth [Å], > 0.
    blue_deficit_width : float
        Logistic width of the deficit's transition [Å], > 0.
    """

    section: ClassVar[str] = "mock.gap"

    seed: int = 2024
    miscal_rms: float = 0.15
    miscal_teff_slope: float = 0.05
    forest_rms: float = 0.3
    n_missing: int = 120
    missing_strength: float = 0.15
    blue_deficit: float = 0.05
    blue_deficit_wave: float = 4300.0
    blue_deficit_width: float = 250.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        at_least(self, 0, "seed", "n_missing")
        nonnegative(self, "miscal_rms", "miscal_teff_slope", "forest_rms", "missing_strength")
        fraction(self, "blue_deficit")
        positive(self, "blue_deficit_wave", "blue_deficit_width")
