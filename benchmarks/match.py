"""Benchmark: spectra per second of the template matcher, against the float32 matmul peak.

Times `sost_jax.inference.matching.make_matcher` (chi2 in matrix form, top-k, estimate;
jit-compiled, targets sharded over all devices) for a library of 2413 templates x 4800 pixels at N =
2000 to 20000 targets, streamed in fixed chunks, so that only a [chunk, T] block of chi2 is held at
any N. The rate is rated in GFLOP/s (4 N P T: the two [N, P] x [P, T] products) against the
machine's measured float32 matmul peak, and put next to a naive NumPy broadcasting version timed in
the same run on a few targets. `infer_store` is also timed end to end on a temporary prepared store,
and `sost-jax infer` end to end (`sost_jax.inference.runner.infer_files`: mock LAMOST FITS files ->
read, rest frame, resample, normalise -> match -> catalogue FITS + CSV) on the LAMOST grid, three
times, each run next to a run of the bare matcher and one of the reading + normalising half alone
(``infer_fraction_of_matcher``: the median ratio). Random template flux: the cost of chi2 does not
depend on the values. The two products are also timed through NumPy's BLAS, with its own
square-matmul peak (``numpy_*`` keys), to show whether a BLAS call beats XLA's dot at these shapes.

    python benchmarks/match.py [--quick] [--templates 2413] [--pixels 4800]
                               [--n 2000 5000 10000 20000] [--chunk 2000] [--naive-n 50]
                               [--infer-n 6000]

Prints a table and writes benchmarks/results/match.json (a flat dict).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "match.json"
sys.path.insert(0, str(HERE))

from peak import jax_matmul_peak, numpy_matmul_peak, write_result  # noqa: E402

from sost_jax.data.store import PreparedStore, StoreWriter  # noqa: E402
from sost_jax.inference.estimate import InferSettings  # noqa: E402
from sost_jax.inference.matching import make_matcher  # noqa: E402
from sost_jax.inference.runner import infer_store  # noqa: E402
from sost_jax.library.templates import Library  # noqa: E402
from sost_jax.runtime.memory import aligned_empty  # noqa: E402

QUICK = {"templates": 400, "pixels": 1000, "n": [500, 1000], "chunk": 250, "naive_n": 8}
QUICK_EXTRA = {"store_n": 500, "peak_sizes": [512, 1024], "infer_n": 300}


def max_rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_library(n_templates: int, n_pixels: int, seed: int = 0):
    """Templates like normalised flux (1 +- 0.1) [T, P] and labels on plausible ranges [T, 3]."""
    rng = np.random.default_rng(seed)
    templates = (1 + 0.1 * rng.standard_normal((n_templates, n_pixels))).astype(np.float32)
    labels = np.stack(
        [
            rng.uniform(3500, 7500, n_templates),
            rng.uniform(0, 5, n_templates),
            rng.uniform(-2.5, 0.5, n_templates),
        ],
        axis=1,
    ).astype(np.float32)
    return templates, labels


def random_targets(n: int, n_pixels: int, seed: int = 1):
    """Targets [n, P] and inverse variances [n, P] with ~5 % masked pixels, in the aligned
    memory `infer` reads chunks into (`sost_jax.runtime.memory.aligned_empty`)."""
    rng = np.random.default_rng(seed)
    flux, weight = aligned_empty((n, n_pixels)), aligned_empty((n, n_pixels))
    flux[:] = 1 + 0.1 * rng.standard_normal((n, n_pixels))
    weight[:] = rng.uniform(100, 1e4, (n, n_pixels))
    weight[rng.uniform(size=(n, n_pixels)) < 0.05] = 0
    return flux, weight


def time_matcher(matcher, flux, weight, n_total: int) -> float:
    """Seconds to match ``n_total`` targets as chunks of ``flux`` (reused), pipelined like
    `sost_jax.inference.runner`: the next chunk is dispatched before the previous one is
    fetched."""
    chunk = flux.shape[0]
    t0 = time.perf_counter()
    pending, done = None, 0
    while done < n_total:
        rows = min(chunk, n_total - done)
        current = matcher.dispatch(flux[:rows], weight[:rows], pad_to=chunk)
        if pending is not None:
            matcher.fetch(pending)
        pending, done = current, done + rows
    matcher.fetch(pending)
    return time.perf_counter() - t0


def bare_products_gflops(flux, weight, templates, repeats: int = 5) -> float:
    """GFLOP/s of just the two [N, P] x [P, T] products at the matcher's shapes: the most any
    matcher built on XLA's matmul can reach here (they fall short of the square peak)."""
    s, s2 = jnp.asarray(templates), jnp.asarray(templates * templates)
    o, w = jnp.asarray(flux), jnp.asarray(weight)
    hp = jax.lax.Precision.HIGHEST
    both = jax.jit(lambda o, w: (jnp.dot(w * o, s.T, precision=hp), jnp.dot(w, s2.T, precision=hp)))
    jax.block_until_ready(both(o, w))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(both(o, w))
        best = min(best, time.perf_counter() - t0)
    return 4.0 * flux.shape[0] * flux.shape[1] * templates.shape[0] / best / 1e9


def numpy_bare_products_gflops(flux, weight, templates, repeats: int = 5) -> float:
    """GFLOP/s of the same two products through NumPy's BLAS (float32 ``@``), to see
    whether a BLAS call beats XLA's dot at these shapes."""
    st = np.ascontiguousarray(templates.T)
    s2t = np.ascontiguousarray((templates * templates).T)
    best = np.inf
    for rep in range(repeats + 1):  # the first call warms the BLAS threads, untimed
        t0 = time.perf_counter()
        _ = (weight * flux) @ st, weight @ s2t
        if rep:
            best = min(best, time.perf_counter() - t0)
    return 4.0 * flux.shape[0] * flux.shape[1] * templates.shape[0] / best / 1e9


def time_naive(flux, weight, templates, k: int, batch: int = 2) -> float:
    """Seconds for the naive version: NumPy broadcasting over [b, T, P] and argpartition,
    ``batch`` targets at a time (the full [N, T, P] temporary would not fit in memory)."""
    t0 = time.perf_counter()
    for lo in range(0, flux.shape[0], batch):
        o, w = flux[lo : lo + batch], weight[lo : lo + batch]
        chi2 = (w[:, None, :] * (o[:, None, :] - templates[None]) ** 2).sum(-1)
        best = np.argpartition(chi2, k, axis=1)[:, :k]
        np.take_along_axis(chi2, best, axis=1).argsort(axis=1)
    return time.perf_counter() - t0


def time_store(templates, labels, n: int, chunk: int, k: int) -> dict[str, Any]:
    """`infer_store` (what ``sost-jax infer`` runs on a prepared store: chunks streamed
    through the matcher, catalogue parts, the FITS and CSV catalogue) on a temporary store of
    ``n`` random spectra: spectra/s."""
    with tempfile.TemporaryDirectory(prefix="sost-match-bench-") as tmp:
        wave = np.arange(templates.shape[1], dtype=np.float64)
        writer = StoreWriter(Path(tmp) / "store", wave, {}, 1)
        flux, weight = random_targets(n, templates.shape[1], seed=2)
        nan = np.full((n, 3), np.nan, np.float32)
        writer.write_shard(0, flux, weight, nan, {"id": np.arange(n).astype(str)})
        del flux, weight
        store = PreparedStore(Path(tmp) / "store")
        library = Library(wave, templates, labels, {"kind": "benchmark"})
        settings = InferSettings(k=k, chunk_size=chunk)
        # A first run compiles (each run makes its matcher), outside the timing.
        infer_store(store, library, Path(tmp) / "warm", settings, progress=False)
        t0 = time.perf_counter()
        out = infer_store(store, library, Path(tmp) / "timed", settings, progress=False)
        seconds = time.perf_counter() - t0
        assert out["n_rows"] == n
    return {"store_n": n, "store_seconds": seconds, "store_spectra_per_s": n / seconds}


def time_infer(
    n_files: int, n_templates: int, k: int, chunk: int, matcher_rate, repeats: int = 3
) -> dict[str, Any]:
    """`infer_files` on ``n_files`` mock LAMOST files against a random library on the LAMOST
    grid (4800 pixels), alternating ``repeats`` times with the bare matcher
    (``matcher_rate()``, spectra/s) and the reading + normalising half alone, so that each
    end-to-end run has its own matcher run next to it (the machine's speed drifts by 10%
    within minutes); the fraction is the median of the runs' ratios. The first call, on a
    few files, compiles and starts the reader processes."""
    from sost_jax.data.prepare import PrepareSettings
    from sost_jax.data.prepare_files import iter_prepared
    from sost_jax.inference.estimate import InferSettings
    from sost_jax.inference.runner import infer_files
    from sost_jax.library.templates import Library
    from sost_jax.mock import write_mock_lamost_survey

    prepare = PrepareSettings()
    templates, labels = random_library(n_templates, prepare.wave.size)
    library = Library(prepare.wave, templates, labels, {"kind": "random"})
    settings = InferSettings(k=k, chunk_size=chunk)
    runs: dict[str, list[float]] = {"infer": [], "matcher": [], "read": []}
    with tempfile.TemporaryDirectory(prefix="sost-infer-bench-") as tmp:
        t0 = time.perf_counter()
        write_mock_lamost_survey(Path(tmp) / "fits", n_files, seed=11)
        write_seconds = time.perf_counter() - t0
        paths = sorted(str(p) for p in (Path(tmp) / "fits").glob("*.fits"))
        infer_files(paths[:chunk], library, Path(tmp) / "warm", prepare, settings, progress=False)
        tasks = [(i, paths[lo : lo + 256]) for i, lo in enumerate(range(0, n_files, 256))]
        for rep in range(repeats):
            t0 = time.perf_counter()
            out = infer_files(
                paths, library, Path(tmp) / f"run{rep}", prepare, settings, progress=False
            )
            runs["infer"].append(n_files / (time.perf_counter() - t0))
            assert out["n_rows"] == n_files, out
            runs["matcher"].append(matcher_rate())
            t0 = time.perf_counter()
            for _ in iter_prepared(tasks, prepare):  # the reading + normalising half alone
                pass
            runs["read"].append(n_files / (time.perf_counter() - t0))
    ratios = [a / b for a, b in zip(runs["infer"], runs["matcher"], strict=True)]
    return {
        "infer_n": n_files,
        "infer_repeats": repeats,
        "infer_end_to_end_spectra_per_s": float(np.median(runs["infer"])),
        "infer_read_normalise_spectra_per_s": float(np.median(runs["read"])),
        "infer_matcher_spectra_per_s": float(np.median(runs["matcher"])),
        "infer_fraction_of_matcher": float(np.median(ratios)),
        "infer_fraction_of_matcher_runs": ratios,
        "infer_perfect_overlap_fraction": float(
            np.median([1 / (1 + m / r) for m, r in zip(runs["matcher"], runs["read"], strict=True)])
        ),
        "infer_mock_write_seconds": write_seconds,
    }


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['n_templates']} templates x {r['n_pixels']} pixels, chunk {r['chunk_size']}, "
        f"k {r['k']}, {r['n_devices']} {r['jax_backend']} device(s); float32 matmul peak "
        f"{r['peak_gflops_per_s']:.1f} GFLOP/s"
    )
    print(f"{'N':>8}{'s':>9}{'spectra/s':>12}{'GFLOP/s':>10}{'% peak':>8}{'max RSS MB':>12}")
    for n, sec, rss in zip(r["n_targets"], r["seconds"], r["max_rss_mb"], strict=True):
        gflops = r["flop_per_spectrum"] * n / sec / 1e9
        print(
            f"{n:>8}{sec:>9.2f}{n / sec:>12.0f}{gflops:>10.1f}"
            f"{100 * gflops / r['peak_gflops_per_s']:>8.1f}{rss:>12.0f}"
        )
    print(
        f"{'2 matmuls':>8}{'':>9}{'':>12}{r['bare_products_gflops_per_s']:>10.1f}"
        f"{100 * r['bare_products_fraction_of_peak']:>8.1f}{'':>12}   (the two products alone)"
    )
    print(
        f"{'NumPy':>8}{'':>9}{'':>12}{r['numpy_bare_products_gflops_per_s']:>10.1f}"
        f"{100 * r['numpy_bare_products_gflops_per_s'] / r['peak_gflops_per_s']:>8.1f}"
        f"{'':>12}   (the same two products through NumPy's BLAS)"
    )
    print(
        f"{'naive':>8}{r['naive_seconds']:>9.2f}{r['naive_spectra_per_s']:>12.1f}"
        f"{r['naive_gflops_per_s']:>10.2f}{'':>8}{'':>12}   (NumPy broadcasting, "
        f"N = {r['naive_n']})"
    )
    print(
        f"matrix form / naive: {r['speedup_vs_naive']:.0f}x; infer_store end to end "
        f"(N = {r['store_n']}): {r['store_spectra_per_s']:.0f} spectra/s"
    )
    print(
        f"infer end to end, {r['infer_n']} LAMOST FITS files -> catalogue: "
        f"{r['infer_end_to_end_spectra_per_s']:.0f} spectra/s (reading + normalising alone: "
        f"{r['infer_read_normalise_spectra_per_s']:.0f} spectra/s); "
        f"{r['infer_fraction_of_matcher']:.2f} of the matcher's rate (median of "
        f"{', '.join(f'{x:.2f}' for x in r['infer_fraction_of_matcher_runs'])}; "
        f"perfect overlap of the two halves would give {r['infer_perfect_overlap_fraction']:.2f})"
    )
    print(
        f"matcher at {r['fraction_of_bare_products']:.3f} of its two bare products, "
        f"{r['fraction_of_peak']:.3f} of the square-matmul peak"
    )
    print(
        f"largest arrays per chunk: chi2 block {r['chi2_block_mb']:.1f} MB, "
        f"targets {r['chunk_input_mb']:.1f} MB; library {r['library_mb']:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--templates", type=int, default=2413)
    parser.add_argument("--pixels", type=int, default=4800)
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 10000, 20000])
    parser.add_argument("--chunk", type=int, default=2000, help="targets per matcher call")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--naive-n", type=int, default=50, help="targets for the naive timing")
    parser.add_argument("--store-n", type=int, default=4000, help="spectra in the store run")
    parser.add_argument("--peak-sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--infer-n", type=int, default=6000, help="files in the infer run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        for key, value in {**QUICK, **QUICK_EXTRA}.items():
            setattr(args, key, value)
    t_start = time.perf_counter()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} before starting; other work skews the timings")

    print("measuring the float32 matmul peak ...", flush=True)
    with jax.default_matmul_precision("highest"):  # the matcher's precision
        peak = jax_matmul_peak(args.peak_sizes)
    numpy_peak = numpy_matmul_peak(args.peak_sizes)

    templates, labels = random_library(args.templates, args.pixels)
    flux, weight = random_targets(args.chunk, args.pixels)
    matcher = make_matcher(templates, labels, k=args.k)
    t0 = time.perf_counter()
    matcher(flux, weight, pad_to=args.chunk)  # compile
    compile_seconds = time.perf_counter() - t0
    bare = bare_products_gflops(flux, weight, templates)
    numpy_bare = numpy_bare_products_gflops(flux, weight, templates)
    seconds, rss = [], []
    for n in args.n:
        print(f"matcher: N = {n} ...", flush=True)
        seconds.append(time_matcher(matcher, flux, weight, n))
        rss.append(max_rss_mb())

    print(f"naive NumPy: N = {args.naive_n} ...", flush=True)
    naive_flux, naive_weight = random_targets(args.naive_n, args.pixels, seed=3)
    naive_seconds = time_naive(naive_flux, naive_weight, templates, args.k)

    print(f"infer_store: N = {args.store_n} ...", flush=True)
    store = time_store(templates, labels, args.store_n, args.chunk, args.k)

    print(f"infer end to end: {args.infer_n} mock LAMOST files ...", flush=True)
    n_last = args.n[-1]
    infer = time_infer(
        args.infer_n,
        args.templates,
        args.k,
        args.chunk,
        lambda: n_last / time_matcher(matcher, flux, weight, n_last),
    )

    flop = 4.0 * args.pixels * args.templates
    rate = args.n[-1] / seconds[-1]
    naive_rate = args.naive_n / naive_seconds
    result = {
        "n_templates": args.templates,
        "n_pixels": args.pixels,
        "k": args.k,
        "chunk_size": args.chunk,
        "n_targets": args.n,
        "seconds": seconds,
        "spectra_per_s_by_n": [n / s for n, s in zip(args.n, seconds, strict=True)],
        "spectra_per_s": rate,
        "flop_per_spectrum": flop,
        "gflops_per_s": rate * flop / 1e9,
        "peak_gflops_per_s": peak,
        "fraction_of_peak": rate * flop / 1e9 / peak,
        "bare_products_gflops_per_s": bare,
        "bare_products_fraction_of_peak": bare / peak,
        "fraction_of_bare_products": rate * flop / 1e9 / bare,
        "numpy_bare_products_gflops_per_s": numpy_bare,
        "numpy_vs_xla_bare_products": numpy_bare / bare,
        "numpy_peak_gflops_per_s": numpy_peak,
        "numpy_bare_products_fraction_of_numpy_peak": numpy_bare / numpy_peak,
        "compile_seconds": compile_seconds,
        "naive_n": args.naive_n,
        "naive_seconds": naive_seconds,
        "naive_spectra_per_s": naive_rate,
        "naive_gflops_per_s": naive_rate * flop / 1e9,
        "speedup_vs_naive": rate / naive_rate,
        **store,
        **infer,
        # Memory: the matcher holds one chunk of targets and its [chunk, T] chi2 block; the
        # peak RSS should not grow from the smallest to the largest N.
        "max_rss_mb": rss,
        "max_rss_growth_mb": rss[-1] - rss[0],
        "chi2_block_mb": args.chunk * args.templates * 4 / 1e6,
        "chunk_input_mb": 2 * args.chunk * args.pixels * 4 / 1e6,
        "library_mb": 2 * args.templates * args.pixels * 4 / 1e6,
        "n_devices": len(jax.devices()),
        "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "machine": platform.processor() or platform.machine(),
        "quick": args.quick,
        "benchmark_seconds": None,
    }
    result["benchmark_seconds"] = time.perf_counter() - t_start
    print_table(result)
    if args.quick and args.out == RESULTS:  # a smoke run never replaces the measured JSON
        print("quick run: nothing written (give --out to keep it)")
        return
    write_result(args.out, result, t_start)


if __name__ == "__main__":
    main()
