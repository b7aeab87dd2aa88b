"""The in-memory inference core: prepared spectra in, catalogue columns out.

`Estimator` holds a library's chi2 matcher (`sost_jax.inference.matching`, compiled once)
and, with ``infer.method = "fit"``, its fit stage (`sost_jax.inference.fit.stage`); given
flux and weight [n, P] on the library's grid it returns the catalogue's columns: identity
(id, obsid, ra, dec, snr, source), the estimates and their flags. It writes nothing: the
resumable runner (`sost_jax.inference.runner`), the Python API (`sost_jax.inference.api`)
and the demo all estimate through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jax.sharding import Mesh

from sost_jax.constants import LABEL_NAMES
from sost_jax.data.prepare import UNPHYSICAL_KEY
from sost_jax.errors import InputError
from sost_jax.inference.fit.fitting import FitSettings
from sost_jax.inference.fit.stage import FIT_COLUMNS, FitStage, empty_fit_columns, fit_emulator_path
from sost_jax.inference.flags import MatchFlag
from sost_jax.inference.matching import Matcher, make_matcher
from sost_jax.library.templates import Library, read_library
from sost_jax.runtime.devices import data_mesh
from sost_jax.settings import Settings

ESTIMATE_COLUMNS = (
    "teff",
    "teff_err",
    "logg",
    "logg_err",
    "feh",
    "feh_err",
    "chi2_best",
    "chi2_reduced",
    "n_good",
    "best_index",
    "flags",
)

METHODS = ("grid", "fit")


@dataclass(frozen=True)
class InferSettings(Settings):
    """How targets are matched and how the work is cut.

    Attributes
    ----------
    k : int
        Best templates kept per target; the two best give the estimate (paper), all k the
        uncertainty (`sost_jax.inference.grid_estimate.estimate`).
    chunk_size : int
        Inputs per part (the unit of resumption) and per matcher call.
    free_scale : bool
        Fit a multiplicative scale per target and template.
    poor_fit : float
        Flag POOR_FIT above this reduced chi2.
    min_fraction : float
        Flag FEW_PIXELS below this fraction of pixels with data.
    edge_steps : float
        Flag EDGE within this many library grid steps of its edge.
    method : str
        "grid": the paper's two-best estimate; "fit": that estimate, then a continuous fit
        through the library's emulator (`sost_jax.inference.fit.stage`, settings in ``fit``).
    fit : FitSettings
        The fit's settings (`sost_jax.inference.fit.fitting`).
    """

    section = "infer"

    k: int = 10
    chunk_size: int = 4096
    free_scale: bool = False
    poor_fit: float = 3.0
    min_fraction: float = 0.5
    edge_steps: float = 1.0
    method: str = "grid"
    fit: FitSettings = field(default_factory=FitSettings)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"infer.method must be one of {METHODS}, got {self.method!r}")
        if int(self.k) < 2:
            raise InputError(f"infer.k must be >= 2 (the two-best rule), got {self.k}")
        if int(self.chunk_size) < 1:
            raise InputError(f"infer.chunk_size must be >= 1, got {self.chunk_size}")
        if not self.poor_fit > 0:
            raise InputError(f"infer.poor_fit must be > 0, got {self.poor_fit}")
        if not 0 <= self.min_fraction <= 1:
            raise InputError(f"infer.min_fraction must be in [0, 1], got {self.min_fraction}")
        if not self.edge_steps >= 0:
            raise InputError(f"infer.edge_steps must be >= 0, got {self.edge_steps}")

    def record(self) -> dict[str, Any]:
        """The settings a run record keeps: without ``method`` and ``fit`` for the grid
        method, so that its runs resume across versions and fit settings."""
        d = self.to_dict()
        if self.method == "grid":
            del d["method"], d["fit"]
        return d


def _identity_columns(meta: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """id, obsid, ra, dec, snr and source of n spectra from their meta columns.

    ``snr`` is the meta's ``snr`` when present, else LAMOST's g-band S/N (``snr_g``).
    """

    def numeric(name: str) -> np.ndarray:
        v = meta.get(name)
        if v is None or np.asarray(v).dtype.kind not in "fiu":
            return np.full(n, np.nan)
        return np.asarray(v, np.float64)

    ids = meta.get("id")
    obsid = numeric("obsid")
    snr = numeric("snr") if "snr" in meta else numeric("snr_g")
    source = meta.get("path", meta.get("source"))
    return {
        "id": np.arange(n).astype(str) if ids is None else np.asarray(ids).astype(str),
        "obsid": np.where(np.isfinite(obsid), obsid, -1).astype(np.int64),
        "ra": numeric("ra"),
        "dec": numeric("dec"),
        "snr": snr.astype(np.float32),
        "source": np.full(n, "") if source is None else np.asarray(source).astype(str),
    }


def _catalogue_rows(
    meta: Mapping[str, np.ndarray],
    labels: np.ndarray,
    found: Mapping[str, np.ndarray],
    with_ref: bool,
) -> dict[str, np.ndarray]:
    """One part's catalogue columns: identity, estimates (and a fit's columns), flags (and
    reference labels)."""
    n = labels.shape[0]
    cols = _identity_columns(meta, n)
    for name in ESTIMATE_COLUMNS + tuple(n for n in FIT_COLUMNS if n in found):
        cols[name] = np.asarray(found[name])
    if UNPHYSICAL_KEY in meta and n:  # found by preparation (`sost_jax.data.prepare`)
        bad = np.asarray(meta[UNPHYSICAL_KEY], np.float64) == 1
        flag = np.where(bad, MatchFlag.UNPHYSICAL_FLUX.value, 0).astype(cols["flags"].dtype)
        cols["flags"] = cols["flags"] | flag
    if with_ref:
        for i, name in enumerate(LABEL_NAMES):
            cols[f"ref_{name}"] = np.asarray(labels[:, i], np.float32)
    return cols


def empty_rows(with_ref: bool, fit: bool) -> dict[str, np.ndarray]:
    ints = ("n_good", "best_index", "flags")
    found = {n: np.zeros(0, np.int32 if n in ints else np.float32) for n in ESTIMATE_COLUMNS}
    if fit:
        found.update(empty_fit_columns())
    return _catalogue_rows({}, np.zeros((0, 3), np.float32), found, with_ref)


class Estimator:
    """The in-memory inference core: prepared spectra in, catalogue columns out.

    Holds a library's matcher (compiled once) and, with ``settings.method == "fit"``, its
    fit stage. The resumable runners (`infer_files`, `infer_store`), the Python API and the
    demo all estimate through it; it writes nothing.

    Parameters
    ----------
    library : Library or path of a library FITS file
    settings : InferSettings, optional
    mesh : Mesh, optional
        Devices to match on; default all local devices.
    """

    def __init__(
        self,
        library: Library | str | os.PathLike,
        settings: InferSettings | None = None,
        mesh: Mesh | None = None,
    ):
        self.library = open_library(library)
        self.settings = InferSettings() if settings is None else settings
        self.fit = _make_fit(self.library, self.settings, mesh)
        self._mesh = mesh
        self._matcher: Matcher | None = None

    @property
    def matcher(self) -> Matcher:
        """The chi2 matcher, built on first use (runs with nothing left to do need none)."""
        if self._matcher is None:
            self._matcher = _make_matcher(self.library, self.settings, self._mesh)
        return self._matcher

    def dispatch(self, flux: np.ndarray, weight: np.ndarray) -> Any:
        """Start matching [n, P] spectra on the devices; `columns` finishes them."""
        return self.matcher.dispatch(flux, weight, self.settings.chunk_size) if len(flux) else None

    def columns(
        self,
        handle: Any,
        flux: np.ndarray,
        weight: np.ndarray,
        labels: np.ndarray,
        meta: Mapping[str, np.ndarray],
        with_ref: bool,
    ) -> dict[str, np.ndarray]:
        """The catalogue columns of spectra whose match `dispatch` started (``handle``):
        the grid estimates, the fit from them when asked, identity and flag columns, and
        ``ref_*`` from ``labels`` [n, 3] when ``with_ref``."""
        if handle is None:
            return empty_rows(with_ref, self.fit is not None)
        found = Matcher.fetch(handle)
        if self.fit is not None:
            found = self.fit(flux, weight, found)
        return _catalogue_rows(meta, labels, found, with_ref)

    def __call__(
        self,
        flux: np.ndarray,
        weight: np.ndarray,
        meta: Mapping[str, np.ndarray] | None = None,
        labels: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Catalogue columns of prepared spectra (flux, weight [n, P] on the library's grid;
        meta columns [n]; reference labels [n, 3] give ``ref_*`` columns)."""
        flux, weight = np.asarray(flux, np.float32), np.asarray(weight, np.float32)
        _check_grid_size(flux, self.library)
        n = flux.shape[0]
        meta = {"id": np.arange(n).astype(str)} if meta is None else meta
        with_ref = labels is not None
        labels = np.full((n, 3), np.nan, np.float32) if labels is None else np.asarray(labels)
        size = self.settings.chunk_size
        blocks = []
        for lo in range(0, n, size):
            rows = slice(lo, min(lo + size, n))
            part = {k: np.asarray(v)[rows] for k, v in meta.items()}
            f, w = flux[rows], weight[rows]
            blocks.append(self.columns(self.dispatch(f, w), f, w, labels[rows], part, with_ref))
        if not blocks:
            return empty_rows(with_ref, self.fit is not None)
        return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _check_grid_size(flux: np.ndarray, library: Library) -> None:
    if flux.ndim != 2 or flux.shape[1] != library.n_pixels:
        raise InputError(
            f"spectra of shape {flux.shape} do not fit the library's {library.n_pixels} pixels"
        )


def open_library(library: Library | str | os.PathLike) -> Library:
    return library if isinstance(library, Library) else read_library(library)


def library_steps(library: Library) -> tuple[float, float, float] | None:
    """The cell size [K, dex, dex] a library was drawn on (``meta["grid"]``, written by
    `sost_jax.library.recipe.make_libraries`), or None for others (regular grids)."""
    grid = library.meta.get("grid")
    if not isinstance(grid, Mapping):
        return None
    try:
        return tuple(float(grid[f"{name}_step"]) for name in LABEL_NAMES)
    except (KeyError, TypeError, ValueError):
        return None


def _make_matcher(library: Library, settings: InferSettings, mesh: Mesh | None) -> Matcher:
    """The matcher of a library; ``k`` is capped at the number of templates."""
    if len(library) < 2:
        raise InputError(f"the library holds {len(library)} templates; the rule needs 2")
    return make_matcher(
        library.flux,
        library.labels,
        min(settings.k, len(library)),
        data_mesh(local=True) if mesh is None else mesh,
        settings.free_scale,
        poor_fit=settings.poor_fit,
        min_fraction=settings.min_fraction,
        edge_steps=settings.edge_steps,
        label_steps=library_steps(library),
    )


def _make_fit(library: Library, settings: InferSettings, mesh: Mesh | None) -> FitStage | None:
    """The fit stage of ``infer.method = "fit"`` (None for "grid")."""
    if settings.method != "fit":
        return None
    mesh = data_mesh(local=True) if mesh is None else mesh
    path = fit_emulator_path(library.meta)
    return FitStage(path, library.wave, settings.fit, mesh, settings.chunk_size)
