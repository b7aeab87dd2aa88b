"""Benchmark: interpolation error of the Payne-style emulator at held-out grid points.

Trains `sost_jax.library.emulator` on (a) the mock survey's regular synthetic grid (1463 models,
normalised on 3900-8699 Å at 1 Å) and (b) the real Castelli-Kurucz 2004 grid in
../shared/data/ck04 (Teff 3500-8000 K, all log g and [M/H]; the miles_ck04 setting:
3900-7400 Å at 10 Å, degraded to a Gaussian FWHM of 40 Å, normalised), each early-stopped
on 10% of its grid points held out. Beside the emulator's error it gives two baselines on
the same held-out points: the grid's mean spectrum, and the nearest training node (in
scaled labels), i.e. no interpolation at all.

    python benchmarks/emulator_ck04.py [--mock-minutes 4] [--ck04-minutes 2.5]

Prints a table and writes benchmarks/results/emulator.json. Takes about 7 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.data.io.grids import read_ck04
from sost_jax.data.prepare import PrepareSettings, to_grid
from sost_jax.data.preprocess import normalise
from sost_jax.library.emulator import EmulatorSettings, Scaler, train_emulator
from sost_jax.mock import MockSettings, grid_parameters, synthetic_spectra

CK04 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ck04"
RESULTS = Path(__file__).resolve().parent / "results" / "emulator.json"

SETTINGS = EmulatorSettings(
    hidden=(300, 300),
    activation="leaky_relu",
    target="standardised",
    loss="l1",
    learning_rate=1e-3,
    lr_final_fraction=0.1,
    batch_size=128,
    eval_every=10,
    valid_fraction=0.1,
    seed=0,
)
MOCK_SETTINGS = replace(SETTINGS, max_epochs=700, patience=200)
CK04_SETTINGS = replace(SETTINGS, max_epochs=3000, patience=300)
CK04_PREPARE = PrepareSettings(
    grid_start=3900.0, grid_stop=7400.0, grid_step=10.0, degrade_fwhm=40.0, rest_frame=False
)


def mock_grid() -> dict[str, np.ndarray]:
    """The mock survey's synthetic_grid: regular Teff/log g/[Fe/H] nodes, normalised."""
    cfg = MockSettings()
    prep = PrepareSettings()
    params = grid_parameters(**cfg.grid.to_dict())
    flux = synthetic_spectra(params, prep.wave, cfg)
    norm, weight, _ = normalise(prep.wave, flux, np.ones_like(flux), prep.normalise)
    return {"params": params, "flux": norm, "weight": weight, "wave": prep.wave}


def ck04_grid() -> dict[str, np.ndarray]:
    """ck04, Teff 3500-8000 K, resampled to 10 Å, FWHM 40 Å, normalised."""
    grid = read_ck04(CK04, teff_range=(3500, 8000), wave_range=(3700, 7600))
    flux, ivar = to_grid(
        grid.wave, grid.flux, np.ones_like(grid.flux), CK04_PREPARE, medium=grid.meta["medium"]
    )
    norm, weight, _ = normalise(CK04_PREPARE.wave, flux, ivar, CK04_PREPARE.normalise)
    return {"params": grid.params, "flux": norm, "weight": weight, "wave": CK04_PREPARE.wave}


def baselines(data: dict[str, np.ndarray], report: dict[str, Any]) -> dict[str, float]:
    """|residual| median and p95 at the held-out points of two non-emulator predictions."""
    valid = np.asarray(report["valid_indices"])
    finite = np.flatnonzero(np.all(np.isfinite(data["params"]), axis=1))
    train = np.setdiff1d(finite, valid)
    flux, mask = data["flux"], data["weight"] > 0
    scaler = Scaler.fit(data["params"][finite])
    x_train = np.asarray(scaler.scale(data["params"][train]))
    x_valid = np.asarray(scaler.scale(data["params"][valid]))
    nearest = train[np.argmin(((x_valid[:, None, :] - x_train[None, :, :]) ** 2).sum(-1), 1)]
    mean = np.mean(flux[train], axis=0)
    m = mask[valid]
    out = {}
    for name, pred in (("mean_spectrum", mean[None, :]), ("nearest_node", flux[nearest])):
        r = np.abs(pred - flux[valid])[m]
        out[f"{name}_median_abs_residual"] = float(np.median(r))
        out[f"{name}_p95_abs_residual"] = float(np.percentile(r, 95))
    return out


def run(name: str, data: dict[str, np.ndarray], settings: EmulatorSettings) -> dict[str, Any]:
    print(f"{name}: {data['flux'].shape[0]} models x {data['flux'].shape[1]} pixels")
    _, report = train_emulator(
        data["params"], data["flux"], settings, data["weight"], data["wave"], progress=True
    )
    row = {
        "median_abs_residual": report["val_median_abs_residual"],
        "p95_abs_residual": report["val_p95_abs_residual"],
        "max_abs_residual": report["val_max_abs_residual"],
        "train_median_abs_residual": report["train_median_abs_residual"],
        "minutes": report["minutes"],
        "epochs": report["epochs"],
        "best_epoch": report["best_epoch"],
        "stopped_by": report["stopped_by"],
        "n_grid": report["n_grid"],
        "n_valid": report["n_valid"],
        "n_pixels": int(data["flux"].shape[1]),
        **baselines(data, report),
    }
    return {f"{name}_{k}": v for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mock-minutes", type=float, default=4.0)
    parser.add_argument("--ck04-minutes", type=float, default=2.5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    t = time.perf_counter()
    mock = mock_grid()
    results["mock_data_seconds"] = round(time.perf_counter() - t, 2)
    results.update(run("mock", mock, replace(MOCK_SETTINGS, max_minutes=args.mock_minutes)))
    if CK04.is_dir():
        t = time.perf_counter()
        ck04 = ck04_grid()
        results["ck04_data_seconds"] = round(time.perf_counter() - t, 2)
        results.update(run("ck04", ck04, replace(CK04_SETTINGS, max_minutes=args.ck04_minutes)))
    else:
        print(f"ck04: skipped ({CK04} is absent)")
    results["minutes"] = (time.perf_counter() - t0) / 60
    results["cpu_count"] = os.cpu_count()
    results["hidden"] = "x".join(str(h) for h in SETTINGS.hidden)
    for key in ("activation", "target", "loss", "learning_rate", "batch_size", "valid_fraction"):
        results[key] = getattr(SETTINGS, key)
    results["mock_max_epochs"] = MOCK_SETTINGS.max_epochs
    results["ck04_max_epochs"] = CK04_SETTINGS.max_epochs

    print()
    columns = [
        ("median |res|", "median_abs_residual", "13.2e"),
        ("p95 |res|", "p95_abs_residual", "10.2e"),
        ("nearest med", "nearest_node_median_abs_residual", "12.2e"),
        ("nearest p95", "nearest_node_p95_abs_residual", "12.2e"),
        ("mean med", "mean_spectrum_median_abs_residual", "9.2e"),
        ("mean p95", "mean_spectrum_p95_abs_residual", "9.2e"),
        ("epochs", "epochs", "7d"),
        ("best", "best_epoch", "5d"),
        ("minutes", "minutes", "8.2f"),
    ]
    widths = [int(fmt.split(".")[0].rstrip("d")) for _, _, fmt in columns]
    print("grid  " + " ".join(f"{t:>{w}}" for (t, _, _), w in zip(columns, widths, strict=True)))
    for name in ("mock", "ck04"):
        if f"{name}_median_abs_residual" in results:
            cells = [format(results[f"{name}_{key}"], fmt) for _, key, fmt in columns]
            print(f"{name:5} " + " ".join(cells))
    print(f"total {results['minutes']:.2f} min on {results['cpu_count']} cores")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
