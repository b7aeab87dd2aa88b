"""Settings of the mock survey's wavelength grids and stellar population."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from sost_jax.mock.settings.checks import check_types
from sost_jax.settings import Settings, fraction, nonnegative, pair, positive, require

__all__ = ["GridSettings", "PopulationSettings", "PopulationWeights", "WaveSettings"]


@dataclass(frozen=True)
class WaveSettings(Settings):
    """Internal and default output wavelength grids.

    Attributes
    ----------
    fine_min, fine_max : float
        Start and end of the internal log-lambda grid [Å, vacuum].
    fine_dv : float
        Pixel size of the internal grid [km/s], at most 100; ~4 px per LSF sigma.
    out_min, out_max : float
        Default output grid (`default_wave`): first and last pixel [Å], inside the
        internal grid.
    out_step : float
        Default output grid: linear step [Å] (4800 px by default).
    """

    section: ClassVar[str] = "mock.wave"

    fine_min: float = 3600.0
    fine_max: float = 9300.0
    fine_dv: float = 20.0
    out_min: float = 3900.0
    out_max: float = 8699.0
    out_step: float = 1.0

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "fine_min", "fine_dv", "out_min", "out_step")
        require(self.fine_max > self.fine_min, "mock.wave.fine_max", "must exceed fine_min")
        require(self.out_max > self.out_min, "mock.wave.out_max", "must exceed out_min")
        require(
            self.fine_min < self.out_min and self.out_max < self.fine_max,
            "mock.wave",
            "the default output grid (out_min..out_max) must lie inside the internal grid "
            "(fine_min..fine_max)",
        )
        require(self.fine_dv <= 100.0, "mock.wave.fine_dv", "must be <= 100 km/s to sample the LSF")


@dataclass(frozen=True)
class PopulationWeights(Settings):
    """Mixture weights of the populations (normalised internally, not all zero), >= 0.

    Attributes
    ----------
    dwarf : float
        Main-sequence F/G/K dwarfs, Teff 4000-7000 K on the MS relation.
    red_clump : float
        Core-helium burning giants, ~4700 K, log g ~2.4.
    rgb : float
        Red-giant branch, 3700-5200 K, log g 0.2-3.6 along a track.
    subgiant : float
        Subgiants, 5000-6300 K, log g 3.5-4.1.
    hot : float
        Hot F/A-type dwarfs, 6800-8000 K.
    m_dwarf : float
        M dwarfs, 3500-4000 K, log g ~4.7.
    """

    section: ClassVar[str] = "mock.params.weights"

    dwarf: float = 0.44
    red_clump: float = 0.18
    rgb: float = 0.17
    subgiant: float = 0.10
    hot: float = 0.05
    m_dwarf: float = 0.06

    def __post_init__(self) -> None:
        check_types(self, self.section)
        names = [f.name for f in fields(self)]
        nonnegative(self, *names)
        total = sum(float(getattr(self, name)) for name in names)
        require(total > 0, self.section, "must not all be zero")


@dataclass(frozen=True)
class PopulationSettings(Settings):
    """Stellar parameter distribution (`sample_parameters`).

    Attributes
    ----------
    weights : PopulationWeights
        Mixture weights of the populations.
    feh_mean, feh_sigma : float
        Mean and scatter (> 0) of the disc [Fe/H] [dex].
    halo_fraction : float
        Fraction drawn from the metal-poor tail (twice that in giants), in [0, 0.5].
    halo_feh_mean, halo_feh_sigma : float
        Mean and scatter (> 0) of the metal-poor tail [dex].
    teff_range : (float, float)
        Parameters are clipped to these ranges: Teff [K], > 0.
    logg_range, feh_range : (float, float)
        log g and [Fe/H] ranges [dex].
    """

    section: ClassVar[str] = "mock.params"

    weights: PopulationWeights = field(default_factory=PopulationWeights)
    feh_mean: float = -0.2
    feh_sigma: float = 0.3
    halo_fraction: float = 0.06
    halo_feh_mean: float = -1.3
    halo_feh_sigma: float = 0.5
    teff_range: tuple[float, ...] = (3500.0, 8000.0)
    logg_range: tuple[float, ...] = (0.0, 5.0)
    feh_range: tuple[float, ...] = (-2.5, 0.5)

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "feh_sigma", "halo_feh_sigma")
        fraction(self, "halo_fraction")
        require(2 * self.halo_fraction <= 1, "mock.params.halo_fraction", "must be <= 0.5")
        t_low, _ = pair(self, "teff_range")
        pair(self, "logg_range")
        pair(self, "feh_range")
        require(t_low > 0, "mock.params.teff_range", "must be positive temperatures [K]")


@dataclass(frozen=True)
class GridSettings(Settings):
    """Regular "synthetic" grid (``grid_parameters(**settings.grid.to_dict())``).

    Attributes
    ----------
    teff_step : float
        Teff step [K], > 0.
    logg_step, feh_step : float
        log g and [Fe/H] steps [dex], > 0.
    teff_range : (float, float)
        Teff range [K], > 0; both ends included when on the step (low <= high).
    logg_range, feh_range : (float, float)
        log g and [Fe/H] ranges [dex].
    """

    section: ClassVar[str] = "mock.grid"

    teff_step: float = 250.0
    logg_step: float = 0.5
    feh_step: float = 0.5
    teff_range: tuple[float, ...] = (3500.0, 8000.0)
    logg_range: tuple[float, ...] = (0.0, 5.0)
    feh_range: tuple[float, ...] = (-2.5, 0.5)

    def __post_init__(self) -> None:
        check_types(self, self.section)
        positive(self, "teff_step", "logg_step", "feh_step")
        t_low, _ = pair(self, "teff_range", strict=False)
        pair(self, "logg_range", strict=False)
        pair(self, "feh_range", strict=False)
        require(t_low > 0, "mock.grid.teff_range", "must be positive temperatures [K]")
