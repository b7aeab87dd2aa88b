"""The ``demo`` section of a config: the mock survey's data sets and the demo's pairing."""

from __future__ import annotations

from dataclasses import dataclass, field

from sost_jax.errors import InputError
from sost_jax.settings import Settings, at_least
from sost_jax.sost.pairing import LabelErrors


@dataclass(frozen=True)
class LabelBias(Settings):
    """Systematic errors of reference labels (`sost_jax.sost.pairing.LabelErrors`):
    Teff' = teff_scale Teff + teff_offset [K], log g pulled by logg_pull towards logg_pivot
    [dex], [Fe/H] + feh_offset [dex]; LASP-like: 80 K, 0.15 towards 3.5 dex, -0.08 dex."""

    section = "demo.label_bias"
    teff_offset: float = 0.0
    teff_scale: float = 1.0
    logg_pull: float = 0.0
    logg_pivot: float = 3.5
    feh_offset: float = 0.0


@dataclass(frozen=True)
class DemoSettings(Settings):
    """The demo on the mock survey (`sost_jax.demo.run`).

    Attributes
    ----------
    n_synthetic, n_observed, n_test : int
        Sizes of the mock data sets (`sost_jax.mock.survey`).
    n_reference : int
        Stars of the reference catalogue that chooses the library's cells.
    tsne_points : int
        Points per group in the t-SNE figure.
    label_noise : (float, float, float)
        Gaussian errors [K, dex, dex] of the observed training stars' reference labels,
        which choose their synthetic partners (``loss.paired``).
    label_bias : LabelBias
        Systematic errors of those labels.
    pair_fraction : float
        Fraction of the observed training stars that get a partner, in (0, 1]. Below 1 a
        random subset of that size stands for a high-resolution overlap (APOGEE's): it is
        paired at accurate labels (truth plus ``subset_label_noise``, no bias) and the other
        stars have no partner.
    subset_label_noise : (float, float, float)
        Gaussian errors [K, dex, dex] of that subset's labels.
    fit : bool
        Also fit the test set continuously (``infer.method = "fit"``) with the raw and SOST
        libraries' emulators, errors calibrated on the observed pool (`sost_jax.demo.fit`).
    """

    section = "demo"
    n_synthetic: int = 4000
    n_observed: int = 4000
    n_test: int = 2000
    n_reference: int = 100_000
    tsne_points: int = 300
    label_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    label_bias: LabelBias = field(default_factory=LabelBias)
    pair_fraction: float = 1.0
    subset_label_noise: tuple[float, float, float] = (50.0, 0.05, 0.03)
    fit: bool = True

    def __post_init__(self) -> None:
        at_least(self, 1, "n_synthetic", "n_observed", "n_test", "n_reference", "tsne_points")
        for key in ("label_noise", "subset_label_noise"):
            noise = list(getattr(self, key))
            if len(noise) != 3 or any(not (v >= 0) for v in noise):
                raise InputError(f"demo.{key} must be 3 numbers >= 0 (K, dex, dex), got {noise}")
        _ = self.label_errors  # the bias checked
        if not 0 < self.pair_fraction <= 1:
            raise InputError(f"demo.pair_fraction must be in (0, 1], got {self.pair_fraction}")

    @property
    def label_errors(self) -> LabelErrors:
        """The errors of the observed training stars' reference labels."""
        try:
            return LabelErrors(noise=tuple(self.label_noise), **self.label_bias.to_dict())
        except InputError as err:
            raise InputError(f"demo.label_bias: {err}") from None
