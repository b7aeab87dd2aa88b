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
5. parameterise the test set with each library (`sost_jax.inference.catalogue`);
6. compare with the truth (`sost_jax.evaluation.report`): bias and scatter per library, the fraction
   of the raw -> oracle scatter gap that SOST closes, the paper's figures, a report.

Every step resumes: running the demo again in the same folder skips what is finished.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from sost_jax.config import (
    emulator_settings,
    infer_settings,
    prepare_settings,
    reader_workers,
    save_config,
)
from sost_jax.constants import LABEL_NAMES
from sost_jax.data.io import labels_by_id, read_reference_catalog
from sost_jax.data.prepare import prepare_arrays
from sost_jax.demo.fit import fit_figures, fit_test_set
from sost_jax.evaluation.figures import plot_residuals
from sost_jax.evaluation.metrics import format_table, gap_closed
from sost_jax.evaluation.plots import (
    plot_library_coverage,
    plot_parameter_distribution,
    plot_spectra_panels,
    plot_template_gallery,
    plot_tsne_panels,
)
from sost_jax.evaluation.report import evaluate_catalogues
from sost_jax.inference.runner import infer_files, is_current
from sost_jax.library.cells import reference_labels as read_reference
from sost_jax.library.emulator import load_or_train
from sost_jax.library.recipe import make_libraries
from sost_jax.library.templates import Library, read_library, write_library
from sost_jax.mock import observed_spectra, sample_parameters
from sost_jax.mock.survey import example_spectra, make_mock_survey
from sost_jax.runtime.files import replacing
from sost_jax.sost.losses import pixel_relative_residual
from sost_jax.sost.pairing import LabelErrors, paired_store
from sost_jax.sost.training import train_and_evaluate
from sost_jax.sost.translation import reconstructions, translator_from_run

log = logging.getLogger(__name__)

EXAMPLE_PARAMS = np.array(
    [
        [3700.0, 4.7, 0.0],  # M dwarf: TiO bands
        [4750.0, 2.4, -0.2],  # red clump giant
        [5800.0, 4.4, 0.0],  # solar-type dwarf
        [7000.0, 4.1, -0.5],  # F star: Balmer lines
        [4400.0, 1.5, -2.0],  # metal-poor giant
    ]
)
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


def write_reference(path: Path, mock: ml_collections.ConfigDict, n: int, seed: int) -> Path:
    """A reference catalogue of ``n`` labels drawn from the mock population (CSV: id, teff,
    logg, feh), standing in for the stars with trusted labels that choose the library cells."""

    if path.exists():
        return path
    labels = sample_parameters(np.random.default_rng([seed, 7]), n, mock)
    with replacing(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *LABEL_NAMES])
        for i, row in enumerate(labels):
            writer.writerow([f"ref{i:07d}", f"{row[0]:.1f}", f"{row[1]:.4f}", f"{row[2]:.4f}"])
    return path


def reference_labels_for_pairs(truth: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
    """The reference labels [N, 3] that choose the observed training stars' partners.

    Real stars' reference labels carry errors: the true labels ``truth`` [N, 3] get
    ``demo.label_bias`` and ``demo.label_noise`` (`sost_jax.sost.pairing.LabelErrors`). With
    ``demo.pair_fraction`` < 1, a random subset of that fraction (a high-resolution overlap)
    has accurate labels instead (truth plus ``demo.subset_label_noise``) and every other star
    NaN labels, so no partner.
    """
    demo = config.demo
    rng = np.random.default_rng([config.mock.seed, 11])
    labels = LabelErrors.from_config(demo.label_noise, demo.label_bias.to_dict()).apply(truth, rng)
    if demo.pair_fraction < 1:
        n = len(truth)
        subset = np.zeros(n, bool)
        subset[rng.choice(n, size=max(1, round(demo.pair_fraction * n)), replace=False)] = True
        accurate = LabelErrors(noise=tuple(demo.subset_label_noise)).apply(truth, rng)
        labels = np.where(subset[:, None], accurate, np.nan)
    return labels


def _oracle_library(raw_path: Path, config: ml_collections.ConfigDict, out: Path) -> Path:
    """The noiseless observed-domain spectra at the raw library's parameters, normalised like
    the survey: what a perfect translation would produce."""

    path = out / "library_oracle.fits"
    if path.exists():
        return path
    raw = read_library(raw_path)
    settings = prepare_settings(config)
    spec = observed_spectra(raw.labels, settings.wave, config.mock, noiseless=True)
    store = prepare_arrays(
        out / "oracle_store", settings.wave, spec["flux"], spec["ivar"], settings, raw.labels
    )
    flux = store.read(np.arange(len(store)))["flux"]
    meta = {**raw.meta, "kind": "oracle", "style_source": "none (noiseless observed domain)"}
    write_library(path, Library(raw.wave, flux, raw.labels, meta), overwrite=True)
    return path


def _formulation(config: ml_collections.ConfigDict) -> str:
    """One line on how SOST was trained (for the report)."""
    loss, demo = config.loss, config.demo
    weights = f"GAN {loss.gan:g}, id {loss.recon_x:g}, content {loss.recon_c:g}, style "
    weights += f"{loss.recon_s:g}, cycle {loss.cycle:g}, paired {loss.paired:g}"
    weights += f", mean gap {loss.mean_gap:g}" if loss.mean_gap > 0 else ""
    kind = {
        "direct": "the paper's translation (decoder of the observed domain)",
        "change": "translation = synthetic spectrum + a position-aware change decoder",
    }[config.model.translation]
    extras = [f"{config.model.arch} geometry"]
    if loss.gan > 0 and loss.gan_measured:
        extras.append("discriminator sees translations with observed noise")
    if config.train.min_snr > 0:
        extras.append(f"observed S/N >= {config.train.min_snr:g}")
    pairs = ""
    if loss.paired > 0 and demo.pair_fraction < 1:
        noise = ", ".join(f"{v:g}" for v in demo.subset_label_noise)
        pairs = (
            f"; {100 * demo.pair_fraction:g}% of the observed stars paired at accurate labels "
            f"(errors {noise} K, dex, dex)"
        )
    elif loss.paired > 0:
        noise = ", ".join(f"{v:g}" for v in demo.label_noise)
        errors = LabelErrors.from_config(demo.label_noise, demo.label_bias.to_dict())
        # any systematic part set (the pivot alone changes nothing)
        biased = errors != LabelErrors(noise=errors.noise, logg_pivot=errors.logg_pivot)
        shown = ", ".join(f"{k} {v:g}" for k, v in demo.label_bias.items())
        pairs = f"; partners at labels with errors ({noise}) K, dex, dex"
        pairs += f" and bias ({shown})" if biased else ""
    return f"{kind}; {', '.join(extras)}; loss weights {weights}{pairs}; {config.train.steps} steps"


def _last_validation(run: Path) -> dict[str, float]:
    """The last validation record of a run's metrics.jsonl (a resumed, finished run does not
    validate again)."""
    last: dict[str, float] = {}
    path = run / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if any(k.startswith("val_") for k in record):
                last = record
    return last


def _forget_stale_catalogue(folder: Path, library: Any, paths: list[str]) -> None:
    """Remove a catalogue run made with another library (the libraries were rebuilt) or
    other input files (the demo folder was moved)."""
    import shutil

    if not is_current(folder, library, paths):
        log.info("%s was made with another library or inputs: starting it again", folder)
        shutil.rmtree(folder)


_RECON_BATCH = 32
"""Spectra per generator call of the residual figure."""


def _residual_figure(translator: Any, grid: Any, test: Any, path: Path, n: int) -> list[Path]:
    """Fig. 7: relative residuals of in-domain and cycle reconstructions of held-out spectra
    (the synthetic grid and the observed test set: neither was used to train SOST)."""
    from functools import partial

    a = grid.read(np.arange(min(n, len(grid))))
    b = test.read(np.arange(min(n, len(test))))
    m = min(len(a["flux"]), len(b["flux"]))
    fn = jax.jit(partial(reconstructions, model=translator.config.model))
    # in batches: the generators' activations for all n spectra at once took 4 GB (the
    # demo's peak memory)
    parts = [
        jax.device_get(
            fn(translator.gen_params, a["flux"][lo:hi], b["flux"][lo:hi], jax.random.PRNGKey(lo))
        )
        for lo, hi in ((lo, min(lo + _RECON_BATCH, m)) for lo in range(0, m, _RECON_BATCH))
    ]
    rec = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    data = {"a": a, "b": b}
    names = {"recon_a": "reconstruction, synthetic", "recon_b": "reconstruction, observed"}
    names.update({"cycle_a": "cycle, synthetic", "cycle_b": "cycle, observed"})
    residuals = {}
    for key, label in names.items():
        x, w = data[key[-1]]["flux"][:m], data[key[-1]]["weight"][:m]
        residuals[label] = np.asarray(pixel_relative_residual(rec[key], x, w))
    return plot_residuals(grid.wave, residuals, path, title="Held-out reconstructions (Fig. 7)")


def _tsne_figure(
    translator: Any, libraries: dict[str, Any], test: Any, path: Path, n: int, seed: int
) -> list[Path]:
    """Fig. 8: t-SNE of spectra and of style codes, before and after translation."""

    obs = test.read(np.arange(min(n, len(test))))["flux"]
    raw, sost = libraries["raw"].flux[:n], libraries["sost"].flux[:n]
    panels = {
        "spectra before translation": {"synthetic library": raw, "observed test set": obs},
        "spectra after translation": {"SOST library": sost, "observed test set": obs},
        "style codes (observed encoder)": {
            "synthetic library": translator.observed_styles(raw),
            "SOST library": translator.observed_styles(sost),
            "observed test set": translator.observed_styles(obs),
        },
    }
    return plot_tsne_panels(panels, path, seed=seed, max_points=n, title="t-SNE (Fig. 8)")


def run_demo(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike, progress: bool = True
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
    settings = prepare_settings(config)
    demo = config.demo

    _stage("mock survey", t0)
    stores = make_mock_survey(
        work / "mock",
        config.mock,
        settings,
        demo.n_synthetic,
        demo.n_observed,
        demo.n_test,
        seed=config.mock.seed,
        workers=reader_workers(config),
        progress=progress,
    )
    reference = write_reference(
        work / "mock" / "reference.csv", config.mock, demo.n_reference, config.mock.seed
    )
    t_data = time.perf_counter() - t0
    config = ml_collections.ConfigDict(config.to_dict())
    config.train.synthetic_store = str(stores["synthetic"].root.absolute())
    config.train.observed_store = str(stores["observed"].root.absolute())
    save_config(config, work / "config.json")

    figures: dict[str, Path] = {}
    ex = example_spectra(EXAMPLE_PARAMS, config.mock, settings, seed=config.mock.seed)
    figures["The two domains and the oracle at the same parameters"] = plot_spectra_panels(
        settings.wave,
        {"observed (S/N 50)": ex["observed"], "oracle": ex["oracle"], "synthetic": ex["synthetic"]},
        EXAMPLE_PARAMS,
        work / "report" / "figures" / "mock_domains",
        weights={"observed (S/N 50)": ex["observed_weight"]},
    )[0]
    figures["Test set"] = plot_parameter_distribution(
        stores["test"].labels,
        work / "report" / "figures" / "mock_test_kiel",
        title=f"mock survey: test set ({len(stores['test'])} stars)",
    )[0]

    _stage("emulator", t0)
    emulator, emulator_report = load_or_train(
        work / "emulator", stores["synthetic_grid"].root, emulator_settings(config), progress
    )
    n_paired = 0
    if config.loss.paired > 0:
        observed = stores["observed"]
        labels = reference_labels_for_pairs(np.asarray(observed.labels, np.float64), config)
        pairs = paired_store(emulator, observed, work / "pairs", labels=labels)
        config.train.paired_store = str(pairs.root.absolute())
        n_paired = int(pairs.info["n_paired"])
        save_config(config, work / "config.json")

    _stage("SOST training", t0)
    training = train_and_evaluate(config, work / "run", progress=progress)

    # Each stage compiles its own programs; the next ones never reuse training's, so their
    # executables and cached constants go (a few hundred MB of the demo's peak).
    jax.clear_caches()
    _stage("libraries", t0)
    lib_dir = work / "libraries"
    paths = {name: lib_dir / f"library_{name}.fits" for name in LIBRARIES}
    built = False
    if paths["sost"].exists():
        meta = read_library(paths["sost"]).meta
        wants_fit = config.library.translated_points_per_cell > 0
        built = meta.get("step") == int(training["step"]) and (
            "fit_emulator" in meta or not wants_fit
        )
    if not built:
        make_libraries(
            config,
            lib_dir,
            reference,
            emulator=work / "emulator",
            run=work / "run",
            observed=stores["observed"].root,
            progress=progress,
        )
    _oracle_library(paths["raw"], config, lib_dir)
    libraries = {name: read_library(p) for name, p in paths.items()}

    jax.clear_caches()
    _stage("inference on the test set", t0)
    test_files = sorted(str(p) for p in (work / "mock" / "test_fits").glob("*.fits"))
    test_labels_csv = work / "mock" / "test_fits" / "labels.csv"
    labels = labels_by_id(read_reference_catalog(test_labels_csv))
    catalogues = {}
    for name in LIBRARIES:
        _forget_stale_catalogue(work / "catalogues" / name, libraries[name], test_files)
        summary = infer_files(
            test_files,
            paths[name],
            work / "catalogues" / name,
            settings,
            infer_settings(config),
            labels=labels,
            reader=config.data.reader,
            workers=reader_workers(config),
            read_chunk=config.data.chunk_size,
            progress=progress,
        )
        catalogues[name] = summary["catalogue"]
    if demo.fit:
        _stage("continuous fits", t0)
        observed = stores["observed"]
        subset = demo.pair_fraction < 1
        catalogues.update(
            fit_test_set(
                config,
                work,
                observed,
                reference_labels_for_pairs(np.asarray(observed.labels, np.float64), config),
                [float(v) for v in (demo.subset_label_noise if subset else demo.label_noise)],
                paths,
                test_files,
                labels,
                settings,
                progress,
            )
        )

    _stage("figures", t0)
    translator = translator_from_run(work / "run", n_pixels=settings.wave.size)
    fig_dir = work / "report" / "figures"
    figures["Held-out reconstructions (Fig. 7)"] = _residual_figure(
        translator, stores["synthetic_grid"], stores["test"], fig_dir / "residuals", 256
    )[0]
    figures["t-SNE before and after translation (Fig. 8)"] = _tsne_figure(
        translator, libraries, stores["test"], fig_dir / "tsne", demo.tsne_points, 0
    )[0]
    figures["Library coverage (Fig. 9)"] = plot_library_coverage(
        libraries["sost"].labels, read_reference(reference), fig_dir / "library_coverage"
    )[0]
    figures["SOST templates (Fig. 10)"] = plot_template_gallery(
        settings.wave, libraries["sost"].flux, libraries["sost"].labels, fig_dir / "gallery"
    )[0]

    if demo.fit:
        figures.update(
            fit_figures(
                paths["sost"],
                catalogues["sost_fit"],
                stores["test"],
                infer_settings(config),
                fig_dir,
            )
        )

    _stage("evaluation", t0)
    # How far each library's spectra are from the oracle's at the same parameters: the
    # translation must be closer than the raw synthetic spectra for SOST to help.
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
            f"{len(test_files)} held-out mock LAMOST files parameterised with three libraries "
            f"of {len(libraries['sost'])} templates at the same parameters: raw synthetic "
            "(emulator), SOST (translated) and oracle (noiseless observed domain).",
            f"SOST: {_formulation(config)}.",
            "Mean |template - oracle template| at the same parameters (normalised flux): "
            f"raw synthetic {to_oracle['raw']:.4f}, SOST {to_oracle['sost']:.4f}. SOST can "
            "only improve on the raw library where its translations are closer to the "
            "oracle than the raw spectra are.",
        ],
        bias_plane="sost",
        extra_figures=figures,
    )
    tables = result["tables"]
    gaps = {
        name: gap_closed(
            tables["raw"][name]["scatter"],
            tables["sost"][name]["scatter"],
            tables["oracle"][name]["scatter"],
        )
        for name in LABEL_NAMES
    }
    minutes = (time.perf_counter() - t0) / 60
    flat: dict[str, Any] = {f"gap_closed_{name}": gaps[name] for name in LABEL_NAMES}
    flat["runtime_minutes"] = round(minutes, 2)
    flat["raw_mean_abs_diff_to_oracle"] = to_oracle["raw"]
    flat["sost_mean_abs_diff_to_oracle"] = to_oracle["sost"]
    flat.update(result["flat"])
    flat.update(
        {
            "n_test": len(test_files),
            "n_templates": len(libraries["sost"]),
            "train_steps": int(training["step"]),
            "translation": str(config.model.translation),
            "loss_paired": float(config.loss.paired),
            "n_paired": n_paired,
            "label_noise": [float(v) for v in demo.label_noise],
            "label_bias": {k: float(v) for k, v in demo.label_bias.items()},
            "pair_fraction": float(demo.pair_fraction),
            "train_minutes": round(float(training["minutes"]), 2),
            "emulator_val_median_abs_residual": emulator_report["val_median_abs_residual"],
            "emulator_val_p95_abs_residual": emulator_report["val_p95_abs_residual"],
        }
    )
    for key, value in {**_last_validation(work / "run"), **training}.items():
        if key.startswith("val_"):
            flat[f"train_{key}"] = float(value)
    (work / "demo.json").write_text(json.dumps(flat, indent=1) + "\n")
    summary_out: dict[str, Any] = {
        "workdir": str(work),
        "n_spectra": {k: len(v) for k, v in stores.items()},
        "failures": {k: len(v.failures()) for k, v in stores.items()},
        "pixels": int(settings.wave.size),
        "grid_angstrom": [float(settings.wave[0]), float(settings.wave[-1])],
        "data_seconds": round(t_data, 1),
        "runtime_minutes": round(minutes, 2),
        "gap_closed": gaps,
        "table": format_table({TITLES[k]: v for k, v in tables.items()}),
        "report": result["report"],
        "figures": [str(p) for p in result["figures"]],
        "demo_json": str(work / "demo.json"),
    }
    (work / "summary.json").write_text(json.dumps(summary_out, indent=1) + "\n")
    _stage("done", t0)
    return summary_out
