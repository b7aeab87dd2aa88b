"""The demo's continuous-fit stage (``demo.fit``): calibrate on the pool, fit the test set.

For the raw and the SOST library (each names its fit emulator: the raw emulator, the
translated emulator):

1. errors are calibrated on the development data, never the test stars: the observed
   training pool is fitted (`sost_jax.inference.runner.infer_store`, ``infer.method = "fit"``) and
   compared with the reference labels a survey would have for it (the demo's pairing labels,
   with their stated errors); `sost_jax.inference.fit.stage.calibrate_catalogue` writes
   ``calibration.json`` beside the fit emulator;
2. the test files are fitted (`sost_jax.inference.runner.infer_files`), errors calibrated;
3. figures: a few test spectra with their fitted models, and the pull distributions.

A calibration records the library and the settings it was made for; it and the fit
catalogues are redone only when either changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.data.prepare import PrepareSettings
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.evaluation.figures.labels import plot_pulls
from sost_jax.evaluation.figures.spectra import plot_fit_examples
from sost_jax.inference.catalogue import library_hash, read_catalogue
from sost_jax.inference.estimate import InferSettings
from sost_jax.inference.fit.calibration import ErrorCalibration
from sost_jax.inference.fit.fitting import model_flux
from sost_jax.inference.fit.spectral_model import make_spectral_model
from sost_jax.inference.fit.stage import CALIBRATION, calibrate_catalogue, fit_emulator_path
from sost_jax.inference.runner import infer_files, infer_store
from sost_jax.library.emulator import Emulator
from sost_jax.library.templates import read_library

log = logging.getLogger(__name__)

FIT_LIBRARIES = ("raw", "sost")


def _calibrate(
    library_path: Path,
    pool: PreparedStore,
    reference: np.ndarray,
    ref_err: list[float],
    settings: InferSettings,
    out: Path,
    progress: bool,
) -> bool:
    """Calibrate the library's fit errors on the pool; False when a calibration for this
    library exists already."""
    library = read_library(library_path)
    fit = json.dumps(settings.to_dict(), sort_keys=True).encode()
    stamp = (
        f"demo observed pool, library {library_hash(library)}, "
        f"settings {hashlib.sha256(fit).hexdigest()[:12]}"
    )
    existing = fit_emulator_path(library.meta) / CALIBRATION
    if existing.is_file() and ErrorCalibration.load(existing).source == stamp:
        return False
    existing.unlink(missing_ok=True)  # the pool is fitted with formal errors
    shutil.rmtree(out, ignore_errors=True)
    summary = infer_store(pool, library, out, settings, progress=progress)
    catalogue = read_catalogue(summary["catalogue"])
    row = {str(i): k for k, i in enumerate(pool.meta["id"])}
    order = np.array([row[str(i)] for i in catalogue["id"]])
    for i, name in enumerate(LABEL_NAMES):
        catalogue[f"ref_{name}"] = reference[order, i]
    try:
        calibration, _ = calibrate_catalogue(catalogue, library.meta, ref_err, source=stamp)
    except InputError as err:  # e.g. too few pool stars with labels: formal errors stay
        log.warning("no error calibration for %s: %s", library_path.name, err)
        return True
    log.info(
        "fit errors of %s: scale %s, floor %s",
        library_path.name,
        np.round(calibration.scale, 2),
        np.round(calibration.floor, 3),
    )
    return True


def fit_test_set(
    config: ml_collections.ConfigDict,
    work: Path,
    pool: PreparedStore,
    reference: np.ndarray,
    ref_err: list[float],
    library_paths: dict[str, Path],
    test_files: list[str],
    labels: dict[str, Any],
    prepare: PrepareSettings,
    progress: bool,
) -> dict[str, str]:
    """Calibrate (on the pool's ``reference`` labels [N, 3], NaN where a star has none, of
    errors ``ref_err`` [K, dex, dex]) and fit with each of `FIT_LIBRARIES`; returns name ->
    catalogue path (names ``raw_fit``, ``sost_fit``)."""
    settings = InferSettings.from_dict({**config.infer.to_dict(), "method": "fit"})
    out: dict[str, str] = {}
    for name in FIT_LIBRARIES:
        folder = work / "catalogues" / f"{name}_fit"
        redone = _calibrate(
            library_paths[name],
            pool,
            reference,
            ref_err,
            settings,
            work / "catalogues" / f"{name}_fit_pool",
            progress,
        )
        if redone:
            shutil.rmtree(folder, ignore_errors=True)
        summary = infer_files(
            test_files,
            library_paths[name],
            folder,
            prepare,
            settings,
            labels=labels,
            reader=config.data.reader,
            read_chunk=config.data.chunk_size,
            progress=progress,
        )
        out[f"{name}_fit"] = summary["catalogue"]
    return out


def fit_figures(
    sost_library: Path,
    catalogue: str,
    test: PreparedStore,
    settings: InferSettings,
    fig_dir: Path,
    n_examples: int = 3,
) -> dict[str, Path]:
    """The fit figures of the SOST library: examples (spectra from the test store, models
    from their catalogue rows, `sost_jax.inference.fit.fitting.model_flux`) and the pull
    distributions of the test catalogue."""
    library = read_library(sost_library)
    fit = settings.fit
    emulator = Emulator.load(fit_emulator_path(library.meta))
    model = make_spectral_model(emulator, library.wave, fit.continuum_degree, fit.fit_rv)
    cat = read_catalogue(catalogue)
    snr = np.asarray(cat["snr"], np.float64)
    rows = np.argsort(snr)[np.linspace(0, len(snr) - 1, n_examples + 2).astype(int)[1:-1]]
    ids = {str(i): k for k, i in enumerate(test.meta["id"])}
    take = np.array([ids[str(cat["id"][r])] for r in rows])
    data = test.read(take)
    labels = np.stack([cat[n][rows] for n in LABEL_NAMES], axis=1)
    weight = data["weight"] * fit.pixel_weights(library.wave)[None, :]
    models = model_flux(model, labels, cat["rv"][rows], data["flux"], weight)
    titles = [
        f"S/N {snr[r]:.0f}: fit {cat['teff'][r]:.0f} K, {cat['logg'][r]:.2f}, "
        f"{cat['feh'][r]:+.2f}, RV {cat['rv'][r]:+.1f} km/s; truth {cat['ref_teff'][r]:.0f} K, "
        f"{cat['ref_logg'][r]:.2f}, {cat['ref_feh'][r]:+.2f}"
        for r in rows
    ]
    figures = {
        "Continuous fits of test spectra (SOST)": plot_fit_examples(
            library.wave, data["flux"], weight, models, titles, fig_dir / "fit_examples"
        )[0]
    }
    pulls = {name: (cat[name] - cat[f"ref_{name}"]) / cat[f"{name}_err"] for name in LABEL_NAMES}
    figures["Pulls of the SOST fit, calibrated errors"] = plot_pulls(
        pulls, snr, fig_dir / "fit_pulls", title="SOST fit: (estimate - truth) / error"
    )[0]
    return figures
