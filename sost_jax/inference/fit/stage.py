"""The catalogue's second stage (``infer.method = "fit"``): grid match, then continuous fit.

A library names the emulator its templates came from (``fit_emulator`` in its provenance,
written by `sost_jax.library.recipe.make_libraries`): the raw emulator for the raw library, the
translated emulator (`sost_jax.library.translated_emulator`) for a SOST library. `FitStage` fits
every spectrum through that emulator, started from the grid matcher's estimate, and gives
the catalogue's columns: the fitted labels replace the grid's, with the RV, the label
correlations, the iteration count and the convergence flag. Errors are calibrated
(`sost_jax.inference.fit.calibration`) when the emulator's folder holds a
``calibration.json``; the formal ones are kept as ``*_err_formal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jax.sharding import Mesh

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError
from sost_jax.inference.fit.calibration import ErrorCalibration, fit_error_calibration
from sost_jax.inference.fit.fitter import Fitter
from sost_jax.inference.fit.fitting import CORRELATIONS, FitSettings
from sost_jax.inference.fit.spectral_model import make_spectral_model
from sost_jax.inference.flags import MatchFlag
from sost_jax.library.emulator import Emulator

CALIBRATION = "calibration.json"
"""File name of a fit emulator's error calibration, beside its ``emulator.json``."""

FIT_COLUMNS = (
    "rv",
    "rv_err",
    *(f"corr_{a}_{b}" for a, b in CORRELATIONS),
    *(f"{name}_err_formal" for name in LABEL_NAMES),
    "n_iter",
    "converged",
)
"""Columns a fit adds to the grid's (`sost_jax.inference.estimate.ESTIMATE_COLUMNS`)."""


def fit_emulator_path(library_meta: Mapping[str, Any]) -> Path:
    """The emulator a library's fit goes through (its ``fit_emulator`` provenance)."""
    path = library_meta.get("fit_emulator")
    if not path:
        kind = library_meta.get("kind", "?")
        raise InputError(
            f"this {kind} library names no emulator to fit through (no fit_emulator in its "
            "provenance): rebuild it with `sost-jax library` (for a SOST library with "
            "library.translated_points_per_cell > 0), or use infer.method=grid"
        )
    path = Path(str(path))
    if not (path / "emulator.json").is_file():
        raise InputError(f"the library's fit emulator {path} is missing (no emulator.json)")
    return path


class FitStage:
    """Fits a chunk of spectra from the grid's estimates; see the module docstring."""

    def __init__(
        self,
        emulator_path: str | Path,
        wave: np.ndarray,
        settings: FitSettings,
        mesh: Mesh,
        pad_to: int = 1,
    ):
        self.path = Path(emulator_path).absolute()
        emulator = Emulator.load(self.path)
        model = make_spectral_model(emulator, wave, settings.continuum_degree, settings.fit_rv)
        self.fitter = Fitter(model, settings, mesh, pad_to)
        self.keep = settings.pixel_weights(wave)[None, :]  # the masked windows
        calibration = self.path / CALIBRATION
        self.calibration = ErrorCalibration.load(calibration) if calibration.is_file() else None

    def record(self) -> dict[str, Any]:
        """What the catalogue's run record keeps of this stage."""
        return {
            "emulator": str(self.path),
            "settings": self.fitter.settings.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }

    def __call__(
        self, flux: np.ndarray, weight: np.ndarray, grid: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Fitted columns of [N] spectra from the grid's ``grid`` columns (teff, logg, feh,
        best_index...): the estimate columns replaced, `FIT_COLUMNS` added."""
        start = np.stack([np.asarray(grid[name], np.float32) for name in LABEL_NAMES], axis=1)
        fit = self.fitter(flux, weight * self.keep, start)
        formal = np.stack([fit[f"{name}_err"] for name in LABEL_NAMES], axis=1)
        errors = formal if self.calibration is None else self.calibration.apply(formal)
        cols = dict(grid)
        for i, name in enumerate(LABEL_NAMES):
            cols[name] = fit[name].astype(np.float32)
            cols[f"{name}_err"] = errors[:, i].astype(np.float32)
            cols[f"{name}_err_formal"] = formal[:, i].astype(np.float32)
        for name in ("chi2_best", "chi2_reduced", "flags", "rv", "rv_err", "n_iter", "converged"):
            cols[name] = fit[name]
        for a, b in CORRELATIONS:
            cols[f"corr_{a}_{b}"] = fit[f"corr_{a}_{b}"].astype(np.float32)
        return cols


def empty_fit_columns() -> dict[str, np.ndarray]:
    """`FIT_COLUMNS` of zero rows, with their dtypes."""
    ints = {"n_iter": np.int32, "converged": np.bool_}
    return {name: np.zeros(0, ints.get(name, np.float32)) for name in FIT_COLUMNS}


def calibrate_catalogue(
    catalogue: Mapping[str, np.ndarray],
    library_meta: Mapping[str, Any],
    reference_err: Any = None,
    source: str = "",
) -> tuple[ErrorCalibration, Path]:
    """Fit the error calibration of a library's fit emulator from a fit catalogue of stars
    with reference labels (its ``ref_*`` columns: `sost_jax.inference.runner.infer_files` with
    ``labels``, or a labelled store), and save it beside the emulator, where later fits
    read it. Only converged rows without NO_DATA enter.

    Parameters
    ----------
    catalogue : columns
        A catalogue of ``infer.method = "fit"`` (``*_err_formal`` and ``ref_*`` columns).
    library_meta : mapping
        The provenance of the library the catalogue was made with.
    reference_err : [3] or [N, 3], optional
        Errors of the reference labels (K, dex, dex); default 0.
    source : str
        Recorded in the calibration.

    Returns
    -------
    (ErrorCalibration, path of calibration.json)
    """
    needed = [f"{n}_err_formal" for n in LABEL_NAMES] + [f"ref_{n}" for n in LABEL_NAMES]
    missing = [n for n in needed if n not in catalogue]
    if missing:
        raise InputError(
            f"the catalogue has no {missing}: calibrate a catalogue of infer.method=fit made "
            "with reference labels (infer --labels, or a store with labels)"
        )
    usable = np.asarray(catalogue["converged"], bool) & (
        (np.asarray(catalogue["flags"]) & MatchFlag.NO_DATA) == 0
    )

    def stack(fmt: str) -> np.ndarray:
        return np.stack([np.asarray(catalogue[fmt.format(n)], np.float64) for n in LABEL_NAMES], 1)

    ref_err = None
    if reference_err is not None:
        ref_err = np.broadcast_to(np.asarray(reference_err, np.float64), (len(usable), 3))[usable]
    calibration = fit_error_calibration(
        stack("{}")[usable],
        stack("{}_err_formal")[usable],
        stack("ref_{}")[usable],
        ref_err,
        source=source,
    )
    path = fit_emulator_path(library_meta) / CALIBRATION
    return calibration, calibration.save(path)
