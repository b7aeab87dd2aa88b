"""The main job on the embedded default data: ``sost-jax demo``.

Today it builds the mock survey (both domains, a held-out test set written and read back as
LAMOST FITS files), prepares every part like real data, and draws the two domains side by
side. Training, the template libraries, inference and the report join it as they land.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from sost_jax.config import prepare_settings, reader_workers, save_config
from sost_jax.mock.survey import example_spectra, make_mock_survey
from sost_jax.plots import plot_parameter_distribution, plot_spectra_panels

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


def run_demo(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike, progress: bool = True
) -> dict[str, Any]:
    """Run the demo into ``workdir``; returns (and writes) a summary.

    Outputs: ``config.json`` (resolved config), ``mock/`` (stores and test FITS files),
    ``figures/`` (PNG and PDF), ``summary.json``.
    """
    t0 = time.perf_counter()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    save_config(config, work / "config.json")
    settings = prepare_settings(config)

    stores = make_mock_survey(
        work / "mock",
        config.mock,
        settings,
        config.demo.n_synthetic,
        config.demo.n_observed,
        config.demo.n_test,
        seed=config.mock.seed,
        workers=reader_workers(config),
        progress=progress,
    )
    t_data = time.perf_counter() - t0

    log.info("figures")
    ex = example_spectra(EXAMPLE_PARAMS, config.mock, settings, seed=config.mock.seed)
    figures = plot_spectra_panels(
        settings.wave,
        {"observed (S/N 50)": ex["observed"], "oracle": ex["oracle"], "synthetic": ex["synthetic"]},
        EXAMPLE_PARAMS,
        work / "figures" / "mock_domains",
        weights={"observed (S/N 50)": ex["observed_weight"]},
    )
    for name in ("observed", "test"):
        figures += plot_parameter_distribution(
            stores[name].labels,
            work / "figures" / f"mock_{name}_kiel",
            title=f"mock survey: {name} set ({len(stores[name])} stars)",
        )
    summary: dict[str, Any] = {
        "workdir": str(work),
        "n_spectra": {k: len(v) for k, v in stores.items()},
        "failures": {k: len(v.failures()) for k, v in stores.items()},
        "pixels": int(settings.wave.size),
        "grid_angstrom": [float(settings.wave[0]), float(settings.wave[-1])],
        "data_seconds": round(t_data, 1),
        "runtime_minutes": round((time.perf_counter() - t0) / 60, 2),
        "figures": [str(p) for p in figures],
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
