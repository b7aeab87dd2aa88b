"""The translated emulator: labels -> observed-domain spectrum at the cost of an MLP.

A continuous fit through the emulator *and* the SOST generator would run the generator (many
GFLOP per spectrum at the paper's size) at every iteration of every spectrum. Instead, a
Payne-style network (`sost_jax.library.emulator`, the same architecture and training as the raw
emulator's) is trained on SOST translations of raw emulator spectra at many label points:

1. label points: ``points_per_cell`` uniform draws inside every library cell kept by the
   reference catalogue (`sost_jax.library.cells.select_cells` with seeds ``seed, seed + 1, ...``),
   so the translated emulator covers the library's domain and nothing else;
2. their raw spectra (the emulator), given styles by the library's style source and
   translated by the run's generator (`sost_jax.library.templates.build_library`, called by
   `sost_jax.library.recipe.make_libraries`: exactly the library's recipe, at more points);
3. an emulator trained on (labels, translated flux) from scratch, early-stopped on held-out
   points (starting from the raw emulator's weights gave a worse log g on the mock's
   development stars, 0.17 against 0.16 dex, at the same 2-minute budget): its
   held-out residuals (``val_median_abs_residual``, ``val_p95_abs_residual`` in the report)
   say how closely it reproduces the translator at labels it was not trained on.

It is saved as an emulator directory (`sost_jax.library.emulator.Emulator.save`) with a
``report.json`` that records where it came from (raw emulator, run, checkpoint step, style
source, number of points) and how well it reproduces the translation.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.errors import InputError
from sost_jax.library.cells import LibraryGrid, select_cells
from sost_jax.library.emulator import Emulator, EmulatorSettings, train_emulator

REPORT = "report.json"


def label_points(reference: np.ndarray, grid: LibraryGrid, points_per_cell: int) -> np.ndarray:
    """``points_per_cell`` uniform draws in every kept cell, float64 [T * points_per_cell, 3]
    (the first T are the library's own triples)."""
    if int(points_per_cell) < 1:
        raise InputError(f"points_per_cell must be >= 1, got {points_per_cell}")
    draws = [
        select_cells(reference, dataclasses.replace(grid, seed=grid.seed + i))
        for i in range(int(points_per_cell))
    ]
    return np.concatenate(draws, axis=0)


def train_translated_emulator(
    emulator: Emulator,
    labels: np.ndarray,
    translated: np.ndarray,
    settings: EmulatorSettings,
    *,
    style_source: str = "",
    progress: bool = True,
) -> tuple[Emulator, dict[str, Any]]:
    """An emulator of translated spectra ``translated`` [N, P] at ``labels`` [N, 3].

    ``emulator`` is the raw emulator they were translated from; the new one keeps its
    wavelengths. Returns it and the training report of
    `sost_jax.library.emulator.train_emulator` (without the per-epoch history), plus ``n_points``
    and ``style_source``.
    """
    model, report = train_emulator(
        labels, translated, settings, wave=emulator.wave, progress=progress
    )
    report = {k: v for k, v in report.items() if k not in ("history", "valid_indices")}
    report["n_points"] = int(np.shape(labels)[0])
    report["style_source"] = style_source
    return model, report


def save_translated_emulator(
    out: str | os.PathLike, model: Emulator, report: Mapping[str, Any]
) -> Path:
    """Write the emulator and its ``report.json`` (provenance and held-out residuals)."""
    path = model.save(out, overwrite=True)
    record = {"kind": "translated", **dict(report)}
    (path / REPORT).write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """The ``report.json`` of a saved (raw or translated) emulator; {} when absent."""
    report = Path(path) / REPORT
    return json.loads(report.read_text()) if report.is_file() else {}
