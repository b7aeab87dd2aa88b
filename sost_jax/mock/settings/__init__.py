"""Settings of the mock survey: every ingredient of the synthetic-observed gap is a knob.

`MockSettings` (the config section ``mock``) holds one frozen dataclass per sub-section;
``MockSettings()`` are the defaults, each field documented with its unit, and every value
is checked when the settings are built (an `InputError` naming the key). Build them from a
config with ``MockSettings.from_dict(config.mock.to_dict(), "mock")``; ``to_dict()`` gives
the config section back.

Wavelengths are vacuum [Å], velocities [km/s], temperatures [K], gravities and abundances
[dex]. Seeds are integers: ``seed`` drives the per-spectrum draws of a mock survey (stellar
parameters, S/N, RV, noise ...), ``gap.seed`` the fixed systematic differences between the
two domains (drawn once, shared by every spectrum), ``features.forest_seed`` the built-in
weak-line list that both domains share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from sost_jax.mock.settings.checks import check_types, type_hints
from sost_jax.mock.settings.domains import (
    FeatureSettings,
    GapSettings,
    LsfSettings,
    SyntheticSettings,
)
from sost_jax.mock.settings.observing import (
    CosmicSettings,
    FluxCalSettings,
    MaskSettings,
    NoiseSettings,
    RvSettings,
    TelluricBand,
    TelluricSettings,
)
from sost_jax.mock.settings.population import (
    GridSettings,
    PopulationSettings,
    PopulationWeights,
    WaveSettings,
)
from sost_jax.settings import Settings, at_least, require

__all__ = [
    "CosmicSettings",
    "FeatureSettings",
    "FluxCalSettings",
    "GapSettings",
    "GridSettings",
    "LsfSettings",
    "MaskSettings",
    "MockSettings",
    "NoiseSettings",
    "PopulationSettings",
    "PopulationWeights",
    "RvSettings",
    "SyntheticSettings",
    "TelluricBand",
    "TelluricSettings",
    "WaveSettings",
    "mock_settings",
]


@dataclass(frozen=True)
class MockSettings(Settings):
    """Settings of the mock survey (the config section ``mock``).

    Attributes
    ----------
    seed : int
        Default seed (>= 0) of the per-spectrum draws (parameters, S/N, RV, noise ...).
    chunk_size : int
        Spectra simulated at once (>= 1); bounds memory, results do not depend on it.
    num_threads : int
        Threads working on chunks in parallel (>= 0); 0: one per available CPU.
    wave : WaveSettings
        Internal wavelength grids.
    params : PopulationSettings
        Stellar parameter distribution.
    grid : GridSettings
        Regular synthetic grid.
    features : FeatureSettings
        Built-in features.
    synthetic : SyntheticSettings
        Synthetic domain.
    lsf, gap, tellurics, fluxcal, noise, mask, cosmic, rv
        Observed domain: line-spread function, systematic gap, tellurics, flux calibration,
        noise, bad pixels, cosmic rays, radial velocities.
    """

    section: ClassVar[str] = "mock"

    seed: int = 0
    chunk_size: int = 256
    num_threads: int = 0
    wave: WaveSettings = field(default_factory=WaveSettings)
    params: PopulationSettings = field(default_factory=PopulationSettings)
    grid: GridSettings = field(default_factory=GridSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    synthetic: SyntheticSettings = field(default_factory=SyntheticSettings)
    lsf: LsfSettings = field(default_factory=LsfSettings)
    gap: GapSettings = field(default_factory=GapSettings)
    tellurics: TelluricSettings = field(default_factory=TelluricSettings)
    fluxcal: FluxCalSettings = field(default_factory=FluxCalSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)
    cosmic: CosmicSettings = field(default_factory=CosmicSettings)
    rv: RvSettings = field(default_factory=RvSettings)

    def __post_init__(self) -> None:
        check_types(self, self.section)
        at_least(self, 0, "seed")
        require(
            self.num_threads >= 0,
            "mock.num_threads",
            f"must be an integer >= 0 (0: all CPUs), got {self.num_threads!r}",
        )
        at_least(self, 1, "chunk_size")
        hints = type_hints(type(self))
        for f in fields(self):
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Settings):
                value = getattr(self, f.name)
                require(
                    isinstance(value, hint),
                    f"mock.{f.name}",
                    f"must be {hint.__name__}, got {type(value).__name__}",
                )


def mock_settings(settings: MockSettings | None) -> MockSettings:
    """``settings``, or the defaults when None; anything else is a TypeError (build mock
    settings from a config with ``MockSettings.from_dict(config.mock.to_dict(), "mock")``)."""
    if settings is None:
        return MockSettings()
    if not isinstance(settings, MockSettings):
        raise TypeError(
            f"mock settings must be a MockSettings, got {type(settings).__name__}; from a "
            "config: MockSettings.from_dict(config.mock.to_dict(), 'mock')"
        )
    return settings
