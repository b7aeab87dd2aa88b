"""The whole library recipe: cells -> emulator -> raw library -> translated library, from a config.

`make_libraries` runs the steps of `sost_jax.library.templates` (see its docstring) with the
``library`` and ``emulator`` sections of a run's config: the emulator saved or trained on the
synthetic grid (`sost_jax.library.emulator.load_or_train`), the cells the reference catalogue
keeps (`sost_jax.library.cells`), the raw library, and with a training run its translated
library and translated emulator (`sost_jax.library.translated_emulator`), each written to one
output folder with a summary (``library.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict

from sost_jax.errors import InputError
from sost_jax.library.cells import LibraryGrid, reference_labels, select_cells
from sost_jax.library.emulator import Emulator, EmulatorSettings, load_or_train
from sost_jax.library.styles import StyleSource, describe, style_source_from_spec
from sost_jax.library.templates import Library, build_library, translate_library, write_library
from sost_jax.library.translated_emulator import (
    label_points,
    save_translated_emulator,
    train_translated_emulator,
)
from sost_jax.sost.translation import translator_from_run

Array = jax.Array


def _library_emulator(
    config: ConfigDict,
    out: Path,
    emulator: str | os.PathLike | None,
    grid_store: str | os.PathLike | None,
    progress: bool,
) -> tuple[Emulator, dict[str, Any]]:
    """The emulator of a library recipe: the saved ``emulator``, else the one in
    ``out / "emulator"`` trained on ``grid_store`` (`load_or_train`), and the summary's
    entries about it (``emulator``, its path; when trained, its held-out residuals)."""
    if emulator is not None:
        emu = Emulator.load(emulator)
        return emu, {"emulator": str(Path(emulator).absolute())}
    if grid_store is None:
        raise InputError("give a saved emulator or a synthetic grid store to train one on")
    emu, report = load_or_train(
        out / "emulator",
        grid_store,
        EmulatorSettings.from_dict(config.emulator.to_dict()),
        progress,
    )
    return emu, {
        "emulator": report["path"],
        "emulator_val_median_abs_residual": report["val_median_abs_residual"],
        "emulator_val_p95_abs_residual": report["val_p95_abs_residual"],
    }


def _library_cells(
    config: ConfigDict, reference: str | os.PathLike
) -> tuple[LibraryGrid, np.ndarray]:
    """The ``library.grid`` settings and one parameter triple [T, 3] (K, dex, dex) per cell
    the reference catalogue fills (`select_cells`); an error when no cell is kept."""
    grid = LibraryGrid.from_dict(config.library.grid.to_dict())
    params = select_cells(reference_labels(reference), grid)
    if not len(params):
        raise InputError(
            f"no cell of the library grid holds {grid.min_stars} or more reference stars; "
            "use larger cells or a lower library.grid.min_stars"
        )
    return grid, params


def _is_matched(config: ConfigDict) -> bool:
    """Whether ``library.style`` is the paper's "matched" style source."""
    return str(config.library.style).strip().lower() == "matched"


def _library_style_source(
    config: ConfigDict, translator: Any, observed: str | os.PathLike | None
) -> StyleSource:
    """The ``library.style`` source of a run's translator; the "matched" source searches
    ``observed`` (default the run's observed store)."""
    observed = observed or translator.config.train.observed_store or None
    return style_source_from_spec(
        str(config.library.style),
        translator.style_dim,
        observed=observed if _is_matched(config) else None,
        encode=translator.observed_styles,
        match_weight=str(config.library.match_weight),
        match_min_snr=float(config.library.match_min_snr),
    )


def _train_library_translated_emulator(
    config: ConfigDict,
    out: Path,
    emu: Emulator,
    translator: Any,
    source: StyleSource,
    key: Array,
    reference: str | os.PathLike,
    grid: LibraryGrid,
    report_extra: Mapping[str, Any],
    progress: bool,
) -> tuple[Path, dict[str, Any]]:
    """The translated emulator (`sost_jax.library.translated_emulator`), trained on the
    library's recipe at ``library.translated_points_per_cell`` points per cell and saved in
    ``out / "translated_emulator"`` with its report (plus ``report_extra``)."""
    points = int(config.library.translated_points_per_cell)
    at_points = build_library(
        label_points(reference_labels(reference), grid, points),
        emu.generate,
        translator,
        source,
        jax.random.fold_in(key, 1),
        wave=emu.wave,
        batch=int(config.library.batch),
    )
    model, report = train_translated_emulator(
        emu,
        at_points.labels,
        at_points.flux,
        EmulatorSettings.from_dict(config.emulator.to_dict()),
        style_source=describe(source),
        progress=progress,
    )
    report.update(report_extra)
    return save_translated_emulator(out / "translated_emulator", model, report), report


def _sost_library(
    config: ConfigDict,
    out: Path,
    raw: Library,
    emu: Emulator,
    run: str | os.PathLike,
    observed: str | os.PathLike | None,
    reference: str | os.PathLike,
    grid: LibraryGrid,
    emulator_path: str,
    progress: bool,
) -> dict[str, Any]:
    """The translated library ``library_sost.fits`` of a training ``run`` (and, with
    ``library.translated_points_per_cell`` > 0, its translated emulator); the summary's
    entries about them."""
    summary: dict[str, Any] = {}
    batch = int(config.library.batch)
    translator = translator_from_run(run, n_pixels=emu.n_pixels, batch=min(batch, 64))
    source = _library_style_source(config, translator, observed)
    key = jax.random.PRNGKey(grid.seed)
    meta = dict(translator.meta)
    if int(config.library.translated_points_per_cell) > 0:
        extra = {"emulator": emulator_path, "run": str(Path(run).absolute()), **meta}
        path, report = _train_library_translated_emulator(
            config, out, emu, translator, source, key, reference, grid, extra, progress
        )
        meta["fit_emulator"] = summary["translated_emulator"] = str(path)
        summary["translated_val_median_abs_residual"] = report["val_median_abs_residual"]
        summary["translated_val_p95_abs_residual"] = report["val_p95_abs_residual"]
    sost = translate_library(raw, translator, source, key, batch=batch, meta=meta)
    summary["sost"] = str(write_library(out / "library_sost.fits", sost, overwrite=True))
    summary["style_source"] = describe(source)
    if _is_matched(config):
        summary["match_weight"] = str(config.library.match_weight)
        summary["match_min_snr"] = float(config.library.match_min_snr)
    summary["run"] = str(Path(run).absolute())
    return summary


def make_libraries(
    config: ConfigDict,
    out_dir: str | os.PathLike,
    reference: str | os.PathLike,
    *,
    emulator: str | os.PathLike | None = None,
    grid_store: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
    observed: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole library recipe: cells -> emulator -> raw library -> translated library.

    Parameters
    ----------
    config : ConfigDict
        ``library`` (grid, style, batch) and ``emulator`` sections are used.
    out_dir : path
        Receives ``library_raw.fits``, ``library_sost.fits`` (with ``run``), ``emulator/``
        (when trained here), ``translated_emulator/`` (with ``run`` and
        ``library.translated_points_per_cell`` > 0: `sost_jax.library.translated_emulator`, what
        ``infer.method = "fit"`` goes through) and ``library.json`` (a summary). Each
        library's provenance names its ``fit_emulator``.
    reference : path
        Reference catalogue of observed labels (`reference_labels`).
    emulator : path, optional
        A saved `sost_jax.library.emulator.Emulator`; else one is trained on ``grid_store``.
    grid_store : path, optional
        Prepared store of the synthetic grid, with labels.
    run : path, optional
        Training work directory (`translator_from_run`); without it only the raw library.
    observed : path, optional
        Observed store for the "matched" style source; default the run's observed store.
    progress : bool
        Progress of the emulator's training.

    Returns
    -------
    dict
        Paths written and template counts (also in ``library.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    emu, found = _library_emulator(config, out, emulator, grid_store, progress)
    summary: dict[str, Any] = {"reference": str(reference), **found}
    grid, params = _library_cells(config, reference)
    batch = int(config.library.batch)
    provenance = {
        "emulator": summary["emulator"],
        "reference": str(reference),
        "grid": grid.to_dict(),
    }
    raw_meta = {**provenance, "fit_emulator": summary["emulator"]}
    raw = build_library(params, emu.generate, wave=emu.wave, batch=batch, meta=raw_meta)
    summary["raw"] = str(write_library(out / "library_raw.fits", raw, overwrite=True))
    summary["n_templates"] = len(raw)
    if run is not None:
        summary.update(
            _sost_library(
                config, out, raw, emu, run, observed, reference, grid, summary["emulator"], progress
            )
        )
    (out / "library.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary
