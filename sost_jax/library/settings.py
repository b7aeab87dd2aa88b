"""The ``library`` section of a config: the template library's cells and its style codes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sost_jax.errors import InputError
from sost_jax.library.cells import LibraryGrid
from sost_jax.library.styles import SPEC_KINDS
from sost_jax.settings import Settings, at_least, nonnegative, one_of


@dataclass(frozen=True)
class LibrarySettings(Settings):
    """How a template library is built.

    Attributes
    ----------
    grid : LibraryGrid
        The cells of the reference catalogue that are kept (paper: 150 K / 0.25 / 0.15 dex,
        at least 5 stars).
    style : str
        Where translated spectra take their style code from (`sost_jax.library.styles`):
        "matched", "prior", "fixed:v1,...", "gaussian:PATH" or "mixture:PATH".
    match_weight : str
        For "matched" partners: the smallest mean squared difference over the observed
        spectrum's good pixels ("mask") or the smallest reduced chi2 weighted by its inverse
        variance ("ivar", the paper's, with S/N > 30).
    match_min_snr : float
        Observed spectra with S/N below this are never partners.
    batch : int
        Spectra per compiled call.
    translated_points_per_cell : int
        Draws per kept cell the translated emulator (`sost_jax.library.translated_emulator`,
        which ``infer.method = "fit"`` goes through) is trained on; 0 builds none.
    """

    section = "library"
    grid: LibraryGrid = field(default_factory=LibraryGrid)
    style: str = "matched"
    match_weight: str = "mask"
    match_min_snr: float = 0.0
    batch: int = 256
    translated_points_per_cell: int = 4

    def __post_init__(self) -> None:
        at_least(self, 1, "batch")
        at_least(self, 0, "translated_points_per_cell")
        kind = str(self.style).partition(":")[0].strip().lower()
        if kind not in SPEC_KINDS:
            raise InputError(
                f"library.style {self.style!r} is not one of "
                "matched, prior, fixed:v1,..., gaussian:PATH, mixture:PATH"
            )
        one_of(self, "match_weight", ("mask", "ivar"))
        nonnegative(self, "match_min_snr")
