"""The library's cells: the reference catalogue's stars binned in label space.

The paper's grid: 150 K x 0.25 dex x 0.15 dex over 3500-8000 K, log g 0-5, [Fe/H]
-2.0..+0.5 (`LibraryGrid`); cells holding fewer than 5 reference stars are dropped, and one
random (seeded) parameter triple is drawn uniformly inside each kept cell (`select_cells`).
The reference catalogue is a prepared store's labels or a CSV/FITS table
(`reference_labels`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.data.io import read_reference_catalog
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.settings import Settings


@dataclass(frozen=True)
class LibraryGrid(Settings):
    """Cells of the reference catalogue's label space and the rules for keeping them.

    Cells are ``[low + i step, low + (i + 1) step)`` in each label, the last one closed at
    ``high`` (and cut there when the range is not a whole number of steps).

    Attributes
    ----------
    teff_step, logg_step, feh_step : float
        Cell size [K, dex, dex].
    teff_range, logg_range, feh_range : (float, float)
        Span covered [K, dex, dex]; stars outside it are ignored.
    min_stars : int
        Cells with fewer stars are dropped.
    seed : int
        Seed of the random triple drawn in each kept cell.
    """

    section = "library.grid"

    teff_step: float = 150.0
    logg_step: float = 0.25
    feh_step: float = 0.15
    teff_range: tuple[float, float] = (3500.0, 8000.0)
    logg_range: tuple[float, float] = (0.0, 5.0)
    feh_range: tuple[float, float] = (-2.0, 0.5)
    min_stars: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in LABEL_NAMES:
            step = float(getattr(self, f"{name}_step"))
            span = tuple(float(v) for v in getattr(self, f"{name}_range"))
            if not (math.isfinite(step) and step > 0):
                raise InputError(f"{name}_step must be > 0, got {step}")
            if len(span) != 2 or not all(map(math.isfinite, span)) or not span[0] < span[1]:
                raise InputError(f"{name}_range must be (low, high) with low < high, got {span}")
            object.__setattr__(self, f"{name}_step", step)
            object.__setattr__(self, f"{name}_range", span)
        if int(self.min_stars) < 1:
            raise InputError(f"min_stars must be >= 1, got {self.min_stars}")
        object.__setattr__(self, "min_stars", int(self.min_stars))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def steps(self) -> np.ndarray:
        """float64 [3] cell sizes."""
        return np.array([getattr(self, f"{n}_step") for n in LABEL_NAMES])

    @property
    def low(self) -> np.ndarray:
        return np.array([getattr(self, f"{n}_range")[0] for n in LABEL_NAMES])

    @property
    def high(self) -> np.ndarray:
        return np.array([getattr(self, f"{n}_range")[1] for n in LABEL_NAMES])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of cells along Teff, log g, [Fe/H]."""
        n = np.ceil((self.high - self.low) / self.steps - 1e-9).astype(int)
        return int(n[0]), int(n[1]), int(n[2])


def check_labels(labels: Any, name: str = "labels") -> np.ndarray:
    x = np.asarray(labels, np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise InputError(f"{name} must be [N, 3] (Teff, log g, [Fe/H]); got {x.shape}")
    return x


def cell_index(labels: Any, grid: LibraryGrid) -> np.ndarray:
    """Cell of every star, int64 [M, 3]; -1 in every column for stars outside the grid or
    with a NaN label."""
    x = check_labels(labels)
    shape = np.array(grid.shape)
    inside = np.isfinite(x).all(axis=1)
    with np.errstate(invalid="ignore"):
        inside &= ((x >= grid.low[None, :]) & (x <= grid.high[None, :])).all(axis=1)
    safe = np.where(inside[:, None], x, grid.low[None, :])
    idx = np.floor((safe - grid.low[None, :]) / grid.steps[None, :]).astype(np.int64)
    idx = np.minimum(idx, shape[None, :] - 1)  # a star exactly at ``high`` joins the last cell
    return np.where(inside[:, None], idx, -1)


def count_cells(labels: Any, grid: LibraryGrid) -> np.ndarray:
    """Stars per cell, int64 [n_teff, n_logg, n_feh] (stars outside or with NaN ignored)."""
    idx = cell_index(labels, grid)
    idx = idx[idx[:, 0] >= 0]
    counts = np.zeros(grid.shape, np.int64)
    np.add.at(counts, (idx[:, 0], idx[:, 1], idx[:, 2]), 1)
    return counts


def select_cells(reference_labels: Any, grid: LibraryGrid | None = None) -> np.ndarray:
    """One random parameter triple inside every well-populated cell of a catalogue.

    Parameters
    ----------
    reference_labels : [M, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of the reference stars (NaN rows ignored).
    grid : LibraryGrid
        Cells, ranges, ``min_stars`` and ``seed`` (default the paper's).

    Returns
    -------
    params : float64 [T, 3]
        Uniformly drawn in each kept cell (cells of ``min_stars`` or more stars), the cells in
        C order of (Teff, log g, [Fe/H]) index. The same grid and catalogue give the same
        triples.
    """
    grid = LibraryGrid() if grid is None else grid
    counts = count_cells(reference_labels, grid)
    kept = np.argwhere(counts >= grid.min_stars)  # [T, 3], C order
    lo = grid.low[None, :] + kept * grid.steps[None, :]
    hi = np.minimum(lo + grid.steps[None, :], grid.high[None, :])
    u = np.random.default_rng(grid.seed).random(kept.shape)
    return lo + u * (hi - lo)


def reference_labels(source: str | os.PathLike) -> np.ndarray:
    """Teff [K], log g [dex], [Fe/H] [dex] float64 [M, 3] of a reference catalogue: a
    prepared store (its labels) or a CSV/FITS catalogue with teff, logg, feh columns."""

    path = Path(source)
    if PreparedStore.is_store(path):
        labels = np.asarray(PreparedStore(path).labels, np.float64)
    else:
        if not path.is_file():
            raise FileNotFoundError(f"reference catalogue {path} does not exist")
        table = read_reference_catalog(path)
        missing = [n for n in LABEL_NAMES if n not in table]
        if missing:
            raise InputError(f"reference catalogue {path} has no column(s) {missing}")
        labels = np.stack([np.asarray(table[n], np.float64) for n in LABEL_NAMES], axis=1)
    if not np.isfinite(labels).all(axis=1).any():
        raise InputError(f"reference catalogue {path} has no star with all three labels")
    return labels
