"""Benchmark: LAMOST FITS files -> normalised arrays on the common grid, spectra per second.

Writes a few thousand mock LAMOST-layout files (checked to read like the real DR10 files when
../shared/data is present), prepares them into a store with `sost_jax.prepare.prepare_files`,
and in the same run times a straightforward per-spectrum version: astropy reading, np.interp
resampling, and scipy's smoothing-spline normalisation with 3 clipping passes.

    python benchmarks/prepare.py [--n 3000] [--workers 2]

Prints a table and writes benchmarks/results/prepare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.interpolate import make_smoothing_spline

from sost_jax.io import read_spectrum
from sost_jax.mock import write_mock_lamost_survey
from sost_jax.prepare import PrepareSettings, prepare_files
from sost_jax.preprocess import normalise

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "lamost_dr10"
RESULTS = Path(__file__).resolve().parent / "results" / "prepare.json"


def straightforward(path: str, wave: np.ndarray, lam: float = 1e7) -> np.ndarray:
    """One spectrum the plain way: astropy, interp, smoothing spline with clipping."""
    with fits.open(path, memmap=False) as hdul:
        z = float(hdul[0].header["Z"])
        row = hdul[1].data
        w = np.asarray(row["WAVELENGTH"][0], np.float64) / (1 + z)
        f = np.asarray(row["FLUX"][0], np.float64)
        iv = np.asarray(row["IVAR"][0], np.float64)
        good = (iv > 0) & (np.asarray(row["ANDMASK"][0]) == 0)
    flux = np.interp(wave, w[good], f[good])
    use = np.ones(wave.size, bool)
    for _ in range(3):
        cont = make_smoothing_spline(wave[use], flux[use], lam=lam)(wave)
        rel = flux / cont - 1
        rms = rel[use].std()
        use = (rel > -2 * rms) & (rel < 3 * rms)
    return flux / cont


def check_like_real(mock_path: str) -> str:
    """Compare a mock file with a real DR10 file as our reader sees them."""
    real_files = sorted(REAL.glob("*.fits"))
    if not real_files:
        return "skipped (no ../shared/data)"
    real, mock = read_spectrum(real_files[0]), read_spectrum(mock_path)
    same_keys = set(real.meta) == set(mock.meta)
    dlog_r, dlog_m = np.diff(np.log10(real.wave)).mean(), np.diff(np.log10(mock.wave)).mean()
    with fits.open(real_files[0]) as a, fits.open(mock_path) as b:
        layout = [(h.name, type(h).__name__) for h in a] == [(h.name, type(h).__name__) for h in b]
        cols = a[1].columns.names == b[1].columns.names
        fmts = a[1].columns.formats == b[1].columns.formats
    ok = same_keys and layout and cols and fmts and abs(dlog_r / dlog_m - 1) < 1e-3
    if not ok:
        raise SystemExit(
            f"mock files do not read like real ones: meta keys {same_keys}, HDUs {layout}, "
            f"columns {cols}, formats {fmts}, log step {dlog_r:.3g} vs {dlog_m:.3g}"
        )
    return "ok (HDUs, columns, formats, meta keys, log-lambda step)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="mock LAMOST files")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--n-straightforward", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sost_bench_prepare_"))
    try:
        t0 = time.perf_counter()
        write_mock_lamost_survey(tmp / "fits", args.n, seed=7)
        write_s = time.perf_counter() - t0
        paths = sorted(str(p) for p in (tmp / "fits").glob("*.fits"))
        like_real = check_like_real(paths[0])
        settings = PrepareSettings()

        t0 = time.perf_counter()  # compile the normaliser once (not part of the rate)
        prepare_files(paths[:256], tmp / "warm", settings, workers=0, progress=False)
        compile_s = time.perf_counter() - t0

        rates = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            store = prepare_files(
                paths, tmp / f"store{r}", settings, workers=args.workers, progress=False
            )
            rates.append(len(paths) / (time.perf_counter() - t0))
            assert len(store) == len(paths), store.failures()[:3]
        ours = float(np.median(rates))

        t0 = time.perf_counter()
        for p in paths[:2000]:
            read_spectrum(p)
        read_rate = min(2000, len(paths)) / (time.perf_counter() - t0)

        chunk = store.read(np.arange(256))
        t0 = time.perf_counter()
        normalise(settings.wave, chunk["flux"], chunk["weight"], settings.normalise)
        norm_rate = 256 / (time.perf_counter() - t0)

        sub = paths[: args.n_straightforward]
        t0 = time.perf_counter()
        plain = np.stack([straightforward(p, settings.wave) for p in sub])
        plain_rate = len(sub) / (time.perf_counter() - t0)
        mine = store.read(np.arange(len(sub)))
        good = mine["weight"] > 0
        agreement = float(np.median(np.abs(plain - mine["flux"])[good]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "spectra_per_s": round(ours, 1),
        "speedup_vs_straightforward": round(ours / plain_rate, 1),
        "straightforward_spectra_per_s": round(plain_rate, 2),
        "spectra_per_s_min": round(min(rates), 1),
        "spectra_per_s_max": round(max(rates), 1),
        "read_files_per_s_one_thread": round(read_rate, 1),
        "normalise_spectra_per_s": round(norm_rate, 1),
        "compile_seconds": round(compile_s, 2),
        "median_abs_diff_vs_straightforward": round(agreement, 5),
        "n_spectra": len(paths),
        "n_straightforward": len(sub),
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "mock_write_files_per_s": round(args.n / write_s, 1),
        "mock_files_like_real": like_real,
        "hours_for_6_5_million": round(6.5e6 / ours / 3600, 2),
    }
    print(f"{'measure':38s} value")
    for key, value in result.items():
        print(f"{key:38s} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
