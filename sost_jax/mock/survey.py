"""The mock survey as prepared stores: what the demo and most tests train and test on.

`make_mock_survey` writes, under one directory:

* ``synthetic/``      synthetic-domain spectra at parameters drawn from the survey
                      population (the SOST synthetic training domain), noiseless;
* ``synthetic_grid/`` synthetic spectra on a regular Teff / log g / [Fe/H] grid (what an
                      emulator is trained on, like a Kurucz grid);
* ``observed/``       observed-domain spectra with noise, RV, masks, tellurics (the SOST
                      observed training domain; the true labels are stored for evaluation);
* ``test_fits/``      held-out observed spectra written as LAMOST DR5+ FITS files with a
                      ``labels.csv`` of the truth, and ``test/`` the store prepared from
                      those files through the same path as real survey files.

Every part is deterministic in the seed and skipped when already complete, so an
interrupted run continues.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.data.io import labels_by_id, read_reference_catalog
from sost_jax.data.prepare import PrepareSettings, prepare_arrays, to_grid
from sost_jax.data.prepare_files import prepare_files
from sost_jax.data.store import PreparedStore
from sost_jax.mock.lamost_files import lamost_wavelength, write_mock_lamost_survey
from sost_jax.mock.observe import observed_spectra
from sost_jax.mock.params import grid_parameters, sample_parameters
from sost_jax.mock.settings import MockSettings, mock_settings
from sost_jax.mock.simulate import synthetic_spectra

log = logging.getLogger(__name__)

PARTS = ("synthetic", "synthetic_grid", "observed", "test")


def _existing(path: Path) -> PreparedStore | None:
    try:
        store = PreparedStore(path)
    except FileNotFoundError:
        return None
    return store if store.complete else None


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{i:07d}" for i in range(n)])


def make_mock_survey(
    out_dir: str | os.PathLike,
    mock: MockSettings,
    settings: PrepareSettings,
    n_synthetic: int,
    n_observed: int,
    n_test: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, PreparedStore]:
    """Simulate the two domains and prepare them as stores (see the module docstring).

    Parameters
    ----------
    out_dir : path
        Directory for the stores and the test FITS files.
    mock : MockSettings
        Mock-survey settings (from a config: ``MockSettings.from_dict(config.mock.to_dict(),
        "mock")``).
    settings : PrepareSettings
        Grid and normalisation applied to every part, as to real data.
    n_synthetic, n_observed, n_test : int
        Sizes of the synthetic and observed training sets and of the held-out test set.
    seed : int
        Seed of all draws; the gap itself is fixed by ``mock.gap.seed``.
    workers : int, optional
        Reader processes for the FITS test set.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict part name -> PreparedStore, with keys `PARTS`.
    """
    mock = mock_settings(mock)
    out = Path(out_dir)
    rng_syn, rng_obs_params, rng_obs = np.random.default_rng(seed).spawn(3)
    wave = settings.wave
    info: dict[str, Any] = {"mock_seed": seed, "gap_seed": int(mock.gap.seed)}
    stores: dict[str, PreparedStore] = {}

    def synthetic_part(name: str, prefix: str, draw: Callable[[], np.ndarray]) -> PreparedStore:
        """A noiseless synthetic-domain store at the parameters ``draw()`` gives."""
        if (store := _existing(out / name)) is not None:
            return store
        params = draw()
        log.info("mock: %d spectra for %s", len(params), name)
        flux = synthetic_spectra(params, wave, mock)
        return prepare_arrays(
            out / name,
            wave,
            flux,
            np.ones_like(flux),
            settings,
            params,
            {"id": _ids(prefix, len(params))},
            info={**info, "part": name},
        )

    stores["synthetic"] = synthetic_part(
        "synthetic", "syn", lambda: sample_parameters(rng_syn, n_synthetic, mock)
    )
    stores["synthetic_grid"] = synthetic_part(
        "synthetic_grid", "grid", lambda: grid_parameters(**mock.grid.to_dict())
    )

    if (store := _existing(out / "observed")) is None:
        log.info("mock: %d observed-domain spectra", n_observed)
        params = sample_parameters(rng_obs_params, n_observed, mock)
        lamost_wave = lamost_wavelength()
        sim = observed_spectra(params, lamost_wave, mock, rng_obs)
        store = prepare_arrays(
            out / "observed",
            lamost_wave,
            sim["flux"],
            sim["ivar"],
            settings,
            params,
            {"id": _ids("obs", n_observed), "snr": sim["snr"], "rv": sim["rv_true"]},
            z=sim["z_header"],
            info={**info, "part": "observed"},
        )
    stores["observed"] = store

    if (store := _existing(out / "test")) is None:
        labels_csv = out / "test_fits" / "labels.csv"
        if not labels_csv.exists():
            log.info("mock: %d held-out observed spectra as LAMOST FITS files", n_test)
            write_mock_lamost_survey(out / "test_fits", n_test, mock, seed=seed + 1)
        cat = read_reference_catalog(labels_csv)
        labels = labels_by_id(cat)
        paths = [str(out / "test_fits" / f) for f in cat["filename"]]
        store = prepare_files(
            paths, out / "test", settings, labels=labels, workers=workers, progress=progress
        )
    stores["test"] = store
    return stores


def example_spectra(
    params: np.ndarray,
    mock: MockSettings,
    settings: PrepareSettings,
    snr: float = 50.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Normalised synthetic, oracle and noisy observed spectra at the same parameters.

    Parameters
    ----------
    params : [M, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    mock : MockSettings
        Mock-survey settings.
    settings : PrepareSettings
        Grid and normalisation.
    snr : float
        S/N of the noisy observed spectra.
    seed : int
        Seed of the noise and RV draws.

    Returns
    -------
    dict with "synthetic", "oracle", "observed" (normalised flux [M, P]) and
    "observed_weight" [M, P], all on ``settings.wave``.
    """
    # the continuum fit imports JAX: only the demo's example spectra need it, not `mock`
    from sost_jax.data.preprocess import normalise

    wave = settings.wave
    ones = np.ones((len(params), wave.size), np.float32)
    syn = synthetic_spectra(params, wave, mock)
    oracle = observed_spectra(params, wave, mock, noiseless=True)["flux"]
    lamost_wave = lamost_wavelength()
    sim = observed_spectra(params, lamost_wave, mock, np.random.default_rng(seed), snr=snr)
    obs, obs_ivar = to_grid(lamost_wave, sim["flux"], sim["ivar"], settings, z=sim["z_header"])
    out = {
        "synthetic": normalise(wave, syn, ones, settings.normalise)[0],
        "oracle": normalise(wave, oracle, ones, settings.normalise)[0],
    }
    out["observed"], out["observed_weight"], _ = normalise(wave, obs, obs_ivar, settings.normalise)
    return out
