"""Settings of the preprocessing steps (plain data, importable without JAX)."""

from __future__ import annotations

from dataclasses import dataclass

from sost_jax.errors import InputError
from sost_jax.settings import Settings


@dataclass(frozen=True)
class NormaliseSettings(Settings):
    """How the pseudo-continuum is fitted.

    Attributes
    ----------
    knot_spacing : float
        Distance between spline knots [Å]; larger is stiffer. 100 Å follows the continuum
        of FGKM spectra at R ~ 2000 without filling in the Balmer wings.
    penalty : float
        Weight of the second-difference penalty, relative to one fully weighted pixel.
    n_iter : int
        Clipping passes after the first fit.
    clip_low, clip_high : float
        Pixels whose relative residual from the current continuum is below ``-clip_low``
        or above ``clip_high`` times the spectrum's rms residual are left out of the next fit.
    weighting : str
        "uniform": every good pixel counts the same (default, robust to blue/red S/N
        differences); "ivar": pixels weighted by inverse variance.
    floor : float
        Lowest continuum, as a fraction of the spectrum's mean flux. Where the fitted
        spline falls below it (in the far blue of cool stars, whose flux nears zero, it can
        dip to almost nothing) the spectrum is divided by the floor instead, so normalised
        flux stays bounded. 0 turns the floor off.
    """

    section = "preprocess.normalise"

    knot_spacing: float = 100.0
    penalty: float = 1.0
    n_iter: int = 5
    clip_low: float = 2.0
    clip_high: float = 3.0
    weighting: str = "uniform"
    floor: float = 0.02

    def __post_init__(self) -> None:
        if self.knot_spacing <= 0:
            raise InputError(f"knot_spacing must be > 0 Å, got {self.knot_spacing}")
        if self.penalty < 0:
            raise InputError(f"penalty must be >= 0, got {self.penalty}")
        if self.n_iter < 0:
            raise InputError(f"n_iter must be >= 0, got {self.n_iter}")
        if self.clip_low <= 0 or self.clip_high <= 0:
            raise InputError("clip_low and clip_high must be > 0 (in units of the rms residual)")
        if not 0 <= self.floor < 1:
            raise InputError(f"floor must be in [0, 1) of the mean flux, got {self.floor}")
        if self.weighting not in ("uniform", "ivar"):
            raise InputError(f"weighting must be 'uniform' or 'ivar', got {self.weighting!r}")
