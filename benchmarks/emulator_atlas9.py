"""Benchmark: the emulator's capacity on the line-resolved ATLAS9/SPECTRUM grid.

The grid (../shared/data/atlas9_spectrum, 725 irregular nodes) prepared as
benchmarks/miles_atlas9.py prepares it (2.5 Å FWHM, 3900-7400 Å in 1 Å pixels, normalised),
and the Payne-style emulator trained on it with several hidden-layer shapes, each
early-stopped on the same 10% of the nodes held out, with the same number of epochs
(configs/miles_atlas9.py's, without its wall-clock cap). The held-out median |error| per Teff
range is compared with the nearest training node's (no interpolation at all): the shape
configs/miles_atlas9.py uses is the smallest that is not worse than the others.

    python benchmarks/emulator_atlas9.py [--hidden 300,300 512,512 300,300,300]

Prints a table and writes benchmarks/results/emulator_atlas9.json. About 7 minutes on 2
cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from miles_atlas9 import ROOT, TEFF_RANGES, data_path, emulator_errors, prepare_grid  # noqa: E402
from peak import provenance, write_result  # noqa: E402

from sost_jax.config import load_config, validate  # noqa: E402
from sost_jax.library.emulator import emulator_from_store  # noqa: E402

RESULTS = HERE / "results" / "emulator_atlas9.json"
SCALE = np.array([250.0, 0.5, 0.3])  # [K, dex, dex]: one grid step of Teff, log g, [Fe/H]


def nearest_node_errors(store, valid: np.ndarray) -> dict[str, float]:
    """Median |error| of the nearest training node (scaled labels) at each held-out node."""
    data = store.read(np.arange(len(store)))
    train = np.setdiff1d(np.arange(len(store)), valid)
    labels = data["labels"] / SCALE
    distance = ((labels[valid, None, :] - labels[None, train, :]) ** 2).sum(axis=2)
    nearest = train[np.argmin(distance, axis=1)]
    residual = np.abs(data["flux"][nearest] - data["flux"][valid])
    out = {"nearest_node_median_abs_error": float(np.median(residual))}
    teff = data["labels"][valid, 0]
    for lo, hi in TEFF_RANGES:
        inside = (teff >= lo) & (teff < hi)
        key = f"nearest_node_median_abs_error_teff_{lo}_{min(hi, 8000)}"
        out[key] = float(np.median(residual[inside])) if inside.any() else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", nargs="+", default=["300,300", "512,512", "300,300,300"])
    args = parser.parse_args()
    t0 = time.perf_counter()
    result: dict = provenance()
    # Every shape gets the same epochs (no wall-clock cap): a fair comparison of capacity.
    config = load_config(ROOT / "configs" / "miles_atlas9.py", ["emulator.max_minutes=0.0"])
    if not data_path(config.atlas9.grid).is_file():
        raise SystemExit(f"{data_path(config.atlas9.grid)} is absent: nothing to benchmark")
    with tempfile.TemporaryDirectory(prefix="sost-emulator-atlas9-") as work:
        store = prepare_grid(config, Path(work) / "atlas9")
        result.update(grid_models=len(store), n_pixels=store.n_pixels)
        valid = None
        for shape in args.hidden:
            hidden = [int(h) for h in shape.split(",")]
            config.emulator.hidden = hidden
            emulator, report = emulator_from_store(
                store.root, validate(config).emulator, progress=False
            )
            name = "x".join(str(h) for h in hidden)
            errors = emulator_errors(emulator, store, report)
            result.update({f"{k}_{name}": v for k, v in errors.items()})
            result[f"minutes_{name}"] = report["minutes"]
            result[f"epochs_{name}"] = report["epochs"]
            result[f"train_median_abs_error_{name}"] = report["train_median_abs_residual"]
            valid = np.asarray(report["valid_indices"], int)  # the same split every time
            print(
                f"{name:>12}: held-out median |error| {errors['emulator_median_abs_error']:.2e}"
                f" (3500-4000 K {errors['emulator_median_abs_error_teff_3500_4000']:.2e}), "
                f"{report['minutes']:.1f} min",
                flush=True,
            )
        result.update(nearest_node_errors(store, valid))
    print(f"{'nearest node':>12}: {result['nearest_node_median_abs_error']:.2e}")
    for lo, hi in TEFF_RANGES:
        span = f"teff_{lo}_{min(hi, 8000)}"
        row = "  ".join(
            f"{result[f'emulator_median_abs_error_{span}_' + s.replace(',', 'x')]:.2e}"
            for s in args.hidden
        )
        print(
            f"{span:>16}: {row}  nearest node {result[f'nearest_node_median_abs_error_{span}']:.2e}"
        )
    write_result(RESULTS, result, t0)


if __name__ == "__main__":
    main()
