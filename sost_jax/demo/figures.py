"""The demo's figures: the two domains, the test set, and the paper's Figs. 7-10 from the
trained run and its libraries."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np

from sost_jax.data.prepare import PrepareSettings
from sost_jax.evaluation.figures.kiel import plot_library_coverage, plot_parameter_distribution
from sost_jax.evaluation.figures.spectra import (
    plot_residuals,
    plot_spectra_panels,
    plot_template_gallery,
)
from sost_jax.evaluation.figures.tsne import plot_tsne_panels
from sost_jax.library.cells import reference_labels as read_reference
from sost_jax.mock import MockSettings
from sost_jax.mock.survey import example_spectra
from sost_jax.sost.losses import pixel_relative_residual
from sost_jax.sost.translation import Translator, reconstructions

EXAMPLE_PARAMS = np.array(
    [
        [3700.0, 4.7, 0.0],  # M dwarf: TiO bands
        [4750.0, 2.4, -0.2],  # red clump giant
        [5800.0, 4.4, 0.0],  # solar-type dwarf
        [7000.0, 4.1, -0.5],  # F star: Balmer lines
        [4400.0, 1.5, -2.0],  # metal-poor giant
    ]
)
"""Teff [K], log g [dex], [Fe/H] [dex] of the stars shown in both domains."""

RECON_BATCH = 32
"""Spectra per generator call of the residual figure."""


def survey_figures(
    mock: MockSettings, prepare: PrepareSettings, test_labels: np.ndarray, fig_dir: Path
) -> dict[str, Path]:
    """The two domains and the oracle at `EXAMPLE_PARAMS`, and the test set's Kiel diagram
    (``test_labels`` [N, 3])."""
    ex = example_spectra(EXAMPLE_PARAMS, mock, prepare, seed=mock.seed)
    domains = plot_spectra_panels(
        prepare.wave,
        {"observed (S/N 50)": ex["observed"], "oracle": ex["oracle"], "synthetic": ex["synthetic"]},
        EXAMPLE_PARAMS,
        fig_dir / "mock_domains",
        weights={"observed (S/N 50)": ex["observed_weight"]},
    )[0]
    test = plot_parameter_distribution(
        test_labels,
        fig_dir / "mock_test_kiel",
        title=f"mock survey: test set ({len(test_labels)} stars)",
    )[0]
    return {"The two domains and the oracle at the same parameters": domains, "Test set": test}


def residual_figure(translator: Translator, grid: Any, test: Any, path: Path, n: int) -> Path:
    """Fig. 7: relative residuals of in-domain and cycle reconstructions of ``n`` held-out
    spectra (the synthetic grid and the observed test set, prepared stores: neither was used
    to train SOST)."""
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
        for lo, hi in ((lo, min(lo + RECON_BATCH, m)) for lo in range(0, m, RECON_BATCH))
    ]
    rec = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    data = {"a": a, "b": b}
    names = {"recon_a": "reconstruction, synthetic", "recon_b": "reconstruction, observed"}
    names.update({"cycle_a": "cycle, synthetic", "cycle_b": "cycle, observed"})
    residuals = {}
    for key, label in names.items():
        x, w = data[key[-1]]["flux"][:m], data[key[-1]]["weight"][:m]
        residuals[label] = np.asarray(pixel_relative_residual(rec[key], x, w))
    title = "Held-out reconstructions (Fig. 7)"
    return plot_residuals(grid.wave, residuals, path, title=title)[0]


def tsne_figure(
    translator: Translator, libraries: dict[str, Any], test: Any, path: Path, n: int, seed: int
) -> Path:
    """Fig. 8: t-SNE of spectra and of style codes, before and after translation (``n``
    points per group)."""
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
    return plot_tsne_panels(panels, path, seed=seed, max_points=n, title="t-SNE (Fig. 8)")[0]


def method_figures(
    translator: Translator,
    stores: dict[str, Any],
    libraries: dict[str, Any],
    reference: Path,
    tsne_points: int,
    wave: np.ndarray,
    fig_dir: Path,
) -> dict[str, Path]:
    """Figs. 7-10: reconstructions, t-SNE, the SOST library's coverage of the reference
    catalogue (CSV ``reference``) and a gallery of its templates (on ``wave`` [P], Å)."""
    sost = libraries["sost"]
    return {
        "Held-out reconstructions (Fig. 7)": residual_figure(
            translator, stores["synthetic_grid"], stores["test"], fig_dir / "residuals", 256
        ),
        "t-SNE before and after translation (Fig. 8)": tsne_figure(
            translator, libraries, stores["test"], fig_dir / "tsne", tsne_points, 0
        ),
        "Library coverage (Fig. 9)": plot_library_coverage(
            sost.labels, read_reference(reference), fig_dir / "library_coverage"
        )[0],
        "SOST templates (Fig. 10)": plot_template_gallery(
            wave, sost.flux, sost.labels, fig_dir / "gallery"
        )[0],
    }
