"""Grid match against continuous fit on the mock test set, raw and SOST.

Runs (or resumes) the demo in ``--workdir`` (configs/cpu.py: its run, libraries, translated
emulator and, with ``demo.fit``, the calibrated fit catalogues of the 2000 test stars), then
compares, against the test stars' true labels:

* bias and scatter of each label for the grid catalogues (the paper's two-best rule) and
  the fit catalogues (`sost_jax.inference.fit.stage`), raw and SOST;
* pull standard deviations ``(est - truth) / err``, overall and per S/N bin, of the fits'
  calibrated errors (and of the grid's errors, for comparison);
* RV recovery: the mock's test files carry the true RV and a header redshift with a 4 km/s
  error; after the rest-frame correction a spectrum's RV is the residual ``rv_true - c z``,
  which the fit should find;
* spectra/s from the FITS files, end to end (read, prepare, match, fit, write), of the grid
  and of the fit path in the same run, each into a fresh folder after a warm-up run (the
  compilation), in parts of 512 spectra (`THROUGHPUT_CHUNK`).

Writes ``benchmarks/results/fit.json`` (flat): ``{grid,fit}_{bias,scatter}_{label}`` (SOST),
``raw_{grid,fit}_{bias,scatter}_{label}``, ``oracle_grid_scatter_{label}``,
``fit_pull_std_{label}`` and ``..._snr{lo}_{hi}``, ``grid_pull_std_{label}``,
``raw_fit_pull_std_{label}``, ``rv_bias``, ``rv_scatter``, ``rv_pull_std``,
``rv_residual_std`` (the spread the fit should remove), ``fit_spectra_per_s``,
``grid_spectra_per_s``, ``fit_converged_fraction``, ``fit_median_iterations``.

    python benchmarks/fit.py [--workdir fit_work] [--out benchmarks/results/fit.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.config import RunSettings, cpu_config, load_settings
from sost_jax.constants import C_KMS, LABEL_NAMES
from sost_jax.data.store import PreparedStore
from sost_jax.demo.run import run_demo
from sost_jax.inference.catalogue import read_catalogue
from sost_jax.inference.estimate import InferSettings
from sost_jax.inference.runner import infer_files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fit.json"
SNR_BINS = ((0, 20), (20, 40), (40, 80), (80, np.inf))


def _stats(cat: dict[str, np.ndarray], prefix: str, pulls: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in LABEL_NAMES:
        diff = np.asarray(cat[name], np.float64) - cat[f"ref_{name}"]
        ok = np.isfinite(diff)
        out[f"{prefix}_bias_{name}"] = float(np.mean(diff[ok]))
        out[f"{prefix}_scatter_{name}"] = float(np.std(diff[ok]))
        if not pulls:
            continue
        pull = diff / cat[f"{name}_err"]
        out[f"{prefix}_pull_std_{name}"] = float(np.std(pull[ok]))
        for lo, hi in SNR_BINS:
            sel = ok & (cat["snr"] >= lo) & (cat["snr"] < hi)
            if sel.sum() >= 50:
                out[f"{prefix}_pull_std_{name}_snr{lo}_{hi:g}"] = float(np.std(pull[sel]))
    return out


def _rv_truth(workdir: Path) -> dict[str, float]:
    """Residual RV [km/s] of each test spectrum after its header's rest-frame correction."""
    test = PreparedStore(workdir / "mock" / "test")
    z = dict(zip(test.meta["id"].astype(str), np.asarray(test.meta["z"], np.float64), strict=True))
    with open(workdir / "mock" / "test_fits" / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {r["id"]: float(r["rv"]) - C_KMS * z[r["id"]] for r in rows}


#: Part size of the throughput runs: a survey's parts of 4096 (the default) hold all 2000
#: test files at once, so reading could not overlap matching and fitting as it does over a
#: survey's many parts; parts of 512 give the steady state.
THROUGHPUT_CHUNK = 512


def _throughput(settings: RunSettings, workdir: Path, method: str, scratch: Path) -> float:
    """Spectra/s of infer_files over the test files with ``method``, in a fresh folder,
    after a first run over them (compilation: once per process and batch size, not per
    survey; the fit's leftover rounds take several batch sizes)."""
    files = sorted(str(p) for p in (workdir / "mock" / "test_fits").glob("*.fits"))
    infer = InferSettings.from_dict(
        {**settings.infer.to_dict(), "method": method, "chunk_size": THROUGHPUT_CHUNK}
    )
    seconds = 0.0
    for run in ("warm_up", "timed"):
        out = scratch / f"{method}_{run}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        infer_files(
            files,
            workdir / "libraries" / "library_sost.fits",
            out,
            settings.preprocess,
            infer,
            progress=False,
        )
        seconds = time.perf_counter() - t0
    return len(files) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("fit_work"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO, force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)
    settings = load_settings(None, base=cpu_config)
    run_demo(settings, args.workdir, progress=False)
    work = args.workdir
    cats = {
        n: read_catalogue(work / "catalogues" / n / "catalogue.fits")
        for n in ("raw", "sost", "oracle", "raw_fit", "sost_fit")
    }
    result: dict[str, Any] = {}
    result.update(_stats(cats["sost"], "grid", pulls=True))
    result.update(_stats(cats["sost_fit"], "fit", pulls=True))
    result.update(_stats(cats["raw"], "raw_grid", pulls=False))
    result.update(_stats(cats["raw_fit"], "raw_fit", pulls=True))
    result.update(_stats(cats["oracle"], "oracle_grid", pulls=False))
    fit = cats["sost_fit"]
    truth = _rv_truth(work)
    rv_true = np.array([truth[str(i)] for i in fit["id"]])
    drv = fit["rv"] - rv_true
    ok = np.isfinite(drv)
    result.update(
        rv_bias=float(np.mean(drv[ok])),
        rv_scatter=float(np.std(drv[ok])),
        rv_pull_std=float(np.std(drv[ok] / fit["rv_err"][ok])),
        rv_residual_std=float(np.std(rv_true)),
        rv_correlation=float(np.corrcoef(fit["rv"][ok], rv_true[ok])[0, 1]),
        fit_converged_fraction=float(np.mean(fit["converged"])),
        fit_median_iterations=float(np.median(fit["n_iter"])),
    )
    scratch = work / "benchmark_throughput"
    result["grid_spectra_per_s"] = _throughput(settings, work, "grid", scratch)
    result["fit_spectra_per_s"] = _throughput(settings, work, "fit", scratch)
    result["fit_fraction_of_grid_speed"] = (
        result["fit_spectra_per_s"] / result["grid_spectra_per_s"]
    )
    result["throughput_chunk_size"] = THROUGHPUT_CHUNK
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")

    print(f"{'':22s} {'Teff [K]':>16s} {'log g [dex]':>16s} {'[Fe/H] [dex]':>16s}")
    for title, key in (
        ("raw grid", "raw_grid"),
        ("raw fit", "raw_fit"),
        ("SOST grid", "grid"),
        ("SOST fit", "fit"),
        ("oracle grid", "oracle_grid"),
    ):
        cells = [
            f"{result[f'{key}_bias_{n}']:+8.3g} ±{result[f'{key}_scatter_{n}']:6.3g}"
            for n in LABEL_NAMES
        ]
        print(f"{title:22s} " + " ".join(f"{c:>16s}" for c in cells))
    print(
        "pull std (SOST fit, calibrated):",
        " / ".join(f"{result[f'fit_pull_std_{n}']:.2f}" for n in LABEL_NAMES),
    )
    print(
        f"RV: bias {result['rv_bias']:+.2f} km/s, scatter {result['rv_scatter']:.2f} km/s "
        f"(residual RVs spread {result['rv_residual_std']:.2f} km/s)"
    )
    print(
        f"spectra/s from FITS: grid {result['grid_spectra_per_s']:.0f}, "
        f"fit {result['fit_spectra_per_s']:.0f}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
