"""The main job on the embedded default data: ``sost-jax demo``.

The whole method on the mock survey, where the truth is known:

1. simulate the survey (`sost_jax.mock.survey`): synthetic spectra, a regular synthetic
   grid, observed spectra, a reference catalogue of labels, and a held-out test set written
   as LAMOST FITS files and read back through the same path as real files;
2. train the emulator on the synthetic grid (`sost_jax.library.emulator`) and, for paired SOST
   (``loss.paired`` > 0, the cpu config), pair each observed star with the emulator's
   spectrum at its labels plus ``demo.label_noise`` errors (`sost_jax.sost.pairing`);
3. train SOST on the synthetic and observed spectra (`sost_jax.sost.training`);
4. build three libraries at the same parameters (`sost_jax.library.templates`): the raw synthetic
   one, the SOST-translated one, and the oracle (the noiseless observed-domain spectra at
   the same parameters, which only a simulation can give: the best any translation could
   do);
5. parameterise the test set with each library (`sost_jax.inference.runner`);
6. compare with the truth (`sost_jax.evaluation.report`): bias and scatter per library, the fraction
   of the raw -> oracle scatter gap that SOST closes, the paper's figures, a report.

Every step resumes: running the demo again in the same folder skips what is finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from sost_jax.config import RunSettings, save_config
from sost_jax.data.io import labels_by_id, read_reference_catalog
from sost_jax.data.prepare import prepare_arrays
from sost_jax.data.store import PreparedStore
from sost_jax.demo.figures import method_figures, survey_figures
from sost_jax.demo.fit import fit_figures, fit_test_set
from sost_jax.demo.reference import reference_labels_for_pairs, write_reference
from sost_jax.demo.results import flat_results, formulation, gaps_closed
from sost_jax.evaluation.report import evaluate_catalogues, format_table
from sost_jax.inference.runner import infer_files, is_current
from sost_jax.library.emulator import Emulator, load_or_train
from sost_jax.library.recipe import make_libraries
from sost_jax.library.templates import Library, read_library, write_library
from sost_jax.mock import observed_spectra
from sost_jax.mock.survey import make_mock_survey
from sost_jax.sost.pairing import paired_store
from sost_jax.sost.training import train_and_evaluate
from sost_jax.sost.translation import translator_from_run

log = logging.getLogger(__name__)

LIBRARIES = ("raw", "sost", "oracle")
TITLES = {
    "raw": "raw synthetic",
    "sost": "SOST",
    "oracle": "oracle",
    "raw_fit": "raw fit",
    "sost_fit": "SOST fit",
}


def _stage(name: str, t0: float) -> None:
    log.info("[%5.1f min] %s", (time.perf_counter() - t0) / 60, name)


def _oracle_library(raw_path: Path, settings: RunSettings, out: Path) -> Path:
    """The noiseless observed-domain spectra at the raw library's parameters, normalised like
    the survey: what a perfect translation would produce."""
    path = out / "library_oracle.fits"
    if path.exists():
        return path
    raw = read_library(raw_path)
    prepare = settings.preprocess
    spec = observed_spectra(raw.labels, prepare.wave, settings.mock, noiseless=True)
    store = prepare_arrays(
        out / "oracle_store", prepare.wave, spec["flux"], spec["ivar"], prepare, raw.labels
    )
    flux = store.read(np.arange(len(store)))["flux"]
    meta = {**raw.meta, "kind": "oracle", "style_source": "none (noiseless observed domain)"}
    write_library(path, Library(raw.wave, flux, raw.labels, meta), overwrite=True)
    return path


def _forget_stale_catalogue(folder: Path, library: Any, paths: list[str]) -> None:
    """Remove a catalogue run made with another library (the libraries were rebuilt) or
    other input files (the demo folder was moved)."""
    if not is_current(folder, library, paths):
        log.info("%s was made with another library or inputs: starting it again", folder)
        shutil.rmtree(folder)


def _mock_survey(
    settings: RunSettings, work: Path, progress: bool
) -> tuple[dict[str, PreparedStore], Path, RunSettings]:
    """The mock survey's stores and reference catalogue; the settings with the training
    stores set (and saved as ``config.json``)."""
    demo, mock = settings.demo, settings.mock
    stores = make_mock_survey(
        work / "mock",
        mock,
        settings.preprocess,
        demo.n_synthetic,
        demo.n_observed,
        demo.n_test,
        seed=mock.seed,
        workers=settings.data.reader_workers,
        progress=progress,
    )
    reference = write_reference(work / "mock" / "reference.csv", mock, demo.n_reference, mock.seed)
    train = replace(
        settings.train,
        synthetic_store=str(stores["synthetic"].root.absolute()),
        observed_store=str(stores["observed"].root.absolute()),
    )
    settings = replace(settings, train=train)
    save_config(settings, work / "config.json")
    return stores, reference, settings


def _pairs(
    settings: RunSettings, emulator: Emulator, observed: PreparedStore, work: Path
) -> tuple[RunSettings, int]:
    """Paired SOST (``loss.paired`` > 0): each observed star's synthetic partner at its
    reference labels (`reference_labels_for_pairs`); the settings with the paired store set,
    and the number of stars paired."""
    if not settings.loss.paired > 0:
        return settings, 0
    truth = np.asarray(observed.labels, np.float64)
    labels = reference_labels_for_pairs(truth, settings.demo, settings.mock.seed)
    pairs = paired_store(emulator, observed, work / "pairs", labels=labels)
    train = replace(settings.train, paired_store=str(pairs.root.absolute()))
    settings = replace(settings, train=train)
    save_config(settings, work / "config.json")
    return settings, int(pairs.info["n_paired"])


def _libraries(
    settings: RunSettings,
    work: Path,
    step: int,
    reference: Path,
    observed: PreparedStore,
    progress: bool,
) -> dict[str, Path]:
    """The raw, SOST and oracle libraries' paths (built unless those of the run's ``step``
    are there already)."""
    lib_dir = work / "libraries"
    paths = {name: lib_dir / f"library_{name}.fits" for name in LIBRARIES}
    built = False
    if paths["sost"].exists():
        meta = read_library(paths["sost"]).meta
        wants_fit = settings.library.translated_points_per_cell > 0
        built = meta.get("step") == step and ("fit_emulator" in meta or not wants_fit)
    if not built:
        make_libraries(
            settings,
            lib_dir,
            reference,
            emulator=work / "emulator",
            run=work / "run",
            observed=observed.root,
            progress=progress,
        )
    _oracle_library(paths["raw"], settings, lib_dir)
    return paths


def _catalogues(
    settings: RunSettings,
    work: Path,
    paths: dict[str, Path],
    libraries: dict[str, Library],
    test_files: list[str],
    labels: dict[str, Any],
    progress: bool,
) -> dict[str, str]:
    """Each library's catalogue of the test files (``labels``: id -> reference labels)."""
    catalogues = {}
    for name in LIBRARIES:
        _forget_stale_catalogue(work / "catalogues" / name, libraries[name], test_files)
        summary = infer_files(
            test_files,
            paths[name],
            work / "catalogues" / name,
            settings.preprocess,
            settings.infer,
            labels=labels,
            reader=settings.data.reader,
            workers=settings.data.reader_workers,
            read_chunk=settings.data.chunk_size,
            progress=progress,
        )
        catalogues[name] = summary["catalogue"]
    return catalogues


def _fits(
    settings: RunSettings,
    work: Path,
    observed: PreparedStore,
    paths: dict[str, Path],
    test_files: list[str],
    labels: dict[str, Any],
    progress: bool,
) -> dict[str, str]:
    """The continuous fits of the test set (`sost_jax.demo.fit`), errors calibrated on the
    observed pool at its pairing labels."""
    demo = settings.demo
    noise = demo.subset_label_noise if demo.pair_fraction < 1 else demo.label_noise
    pool_labels = reference_labels_for_pairs(
        np.asarray(observed.labels, np.float64), demo, settings.mock.seed
    )
    return fit_test_set(
        settings,
        work,
        observed,
        pool_labels,
        [float(v) for v in noise],
        paths,
        test_files,
        labels,
        settings.preprocess,
        progress,
    )


def run_demo(
    settings: RunSettings, workdir: str | os.PathLike, progress: bool = True
) -> dict[str, Any]:
    """Run the demo into ``workdir``; returns (and writes) a summary.

    Outputs: ``config.json``, ``mock/`` (stores, test FITS files, reference catalogue),
    ``emulator/``, ``run/`` (SOST training), ``libraries/`` (raw, SOST and oracle FITS
    libraries), ``catalogues/`` (one per library), ``report/`` (``report.md``, figures,
    ``evaluation.json``), ``summary.json`` and ``demo.json`` (a flat dict of the results).
    """
    t0 = time.perf_counter()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    fig_dir = work / "report" / "figures"
    _stage("mock survey", t0)
    stores, reference, settings = _mock_survey(settings, work, progress)
    t_data = time.perf_counter() - t0
    figures = survey_figures(settings.mock, settings.preprocess, stores["test"].labels, fig_dir)

    _stage("emulator", t0)
    grid = stores["synthetic_grid"].root
    emulator, emulator_report = load_or_train(work / "emulator", grid, settings.emulator, progress)
    settings, n_paired = _pairs(settings, emulator, stores["observed"], work)

    _stage("SOST training", t0)
    training = train_and_evaluate(settings, work / "run", progress=progress)
    # Each stage compiles its own programs; the next ones never reuse training's, so their
    # executables and cached constants go (a few hundred MB of the demo's peak).
    jax.clear_caches()
    _stage("libraries", t0)
    step = int(training["step"])
    paths = _libraries(settings, work, step, reference, stores["observed"], progress)
    libraries = {name: read_library(p) for name, p in paths.items()}

    jax.clear_caches()
    _stage("inference on the test set", t0)
    test_files = sorted(str(p) for p in (work / "mock" / "test_fits").glob("*.fits"))
    test_labels_csv = work / "mock" / "test_fits" / "labels.csv"
    labels = labels_by_id(read_reference_catalog(test_labels_csv))
    catalogues = _catalogues(settings, work, paths, libraries, test_files, labels, progress)
    if settings.demo.fit:
        _stage("continuous fits", t0)
        observed = stores["observed"]
        catalogues.update(_fits(settings, work, observed, paths, test_files, labels, progress))

    _stage("figures", t0)
    translator = translator_from_run(work / "run", n_pixels=settings.preprocess.wave.size)
    wave, tsne_points = settings.preprocess.wave, settings.demo.tsne_points
    figures.update(
        method_figures(translator, stores, libraries, reference, tsne_points, wave, fig_dir)
    )
    if settings.demo.fit:
        test = stores["test"]
        sost_fit = catalogues["sost_fit"]
        figures.update(fit_figures(paths["sost"], sost_fit, test, settings.infer, fig_dir))

    _stage("evaluation", t0)
    summary = _evaluate(
        settings, work, libraries, catalogues, test_labels_csv, figures, len(test_files)
    )
    minutes = (time.perf_counter() - t0) / 60
    counts = {"n_test": len(test_files), "n_templates": len(libraries["sost"])}
    counts["n_paired"] = n_paired
    flat = flat_results(
        settings,
        summary["gap_closed"],
        summary.pop("evaluation"),
        summary.pop("to_oracle"),
        counts,
        training,
        emulator_report,
        work / "run",
        minutes,
    )
    (work / "demo.json").write_text(json.dumps(flat, indent=1) + "\n")
    summary_out: dict[str, Any] = {
        "workdir": str(work),
        "n_spectra": {k: len(v) for k, v in stores.items()},
        "failures": {k: len(v.failures()) for k, v in stores.items()},
        "pixels": int(wave.size),
        "grid_angstrom": [float(wave[0]), float(wave[-1])],
        "data_seconds": round(t_data, 1),
        "runtime_minutes": round(minutes, 2),
        **summary,
        "demo_json": str(work / "demo.json"),
    }
    (work / "summary.json").write_text(json.dumps(summary_out, indent=1) + "\n")
    _stage("done", t0)
    return summary_out


def _evaluate(
    settings: RunSettings,
    work: Path,
    libraries: dict[str, Library],
    catalogues: dict[str, str],
    test_labels_csv: Path,
    figures: dict[str, Path],
    n_test: int,
) -> dict[str, Any]:
    """The report against the truth: each library's table, the gaps closed, and how far
    each library's spectra are from the oracle's at the same parameters (the translation
    must be closer than the raw synthetic spectra for SOST to help)."""
    to_oracle = {
        name: float(np.mean(np.abs(libraries[name].flux - libraries["oracle"].flux)))
        for name in ("raw", "sost")
    }
    result = evaluate_catalogues(
        catalogues,
        test_labels_csv,
        work / "report",
        title="sost-jax demo: the mock survey",
        notes=[
            f"{n_test} held-out mock LAMOST files parameterised with three libraries "
            f"of {len(libraries['sost'])} templates at the same parameters: raw synthetic "
            "(emulator), SOST (translated) and oracle (noiseless observed domain).",
            f"SOST: {formulation(settings)}.",
            "Mean |template - oracle template| at the same parameters (normalised flux): "
            f"raw synthetic {to_oracle['raw']:.4f}, SOST {to_oracle['sost']:.4f}. SOST can "
            "only improve on the raw library where its translations are closer to the "
            "oracle than the raw spectra are.",
        ],
        bias_plane="sost",
        extra_figures=figures,
    )
    tables = result["tables"]
    return {
        "gap_closed": gaps_closed(tables),
        "table": format_table({TITLES[k]: v for k, v in tables.items()}),
        "report": result["report"],
        "figures": [str(p) for p in result["figures"]],
        "evaluation": result,
        "to_oracle": to_oracle,
    }
