"""Benchmark: `sost-jax infer` over a 200,000-spectrum store, straight and killed 3 times.

Writes a prepared store of N random spectra (4800 pixels; the cost of chi2 does not depend
on the values) and a random library of 2413 templates, then runs ``sost-jax infer`` on it in
a child process twice:

1. straight through, sampling the child's resident memory: its peak when 10%, 50% and 100%
   of the catalogue parts are on disk (flat in N means nothing grows with the rows done);
2. killed with SIGKILL at 3 random points of the work (seeded) and started again after each
   kill, as a scheduler or an out-of-memory killer would; the last start runs to the end.

The two catalogues are compared row for row: rows lost (ids of the straight run missing
from the killed one), rows duplicated (ids appearing twice in the killed run's parts) and
whether every column is equal.

    python benchmarks/scale.py [--n 200000] [--quick] [--seed 0]

Prints a table and writes benchmarks/results/scale.json (a flat dict).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.json"
sys.path.insert(0, str(HERE))

from match import random_library, random_targets  # noqa: E402
from peak import write_result  # noqa: E402

from sost_jax.data.store import StoreWriter  # noqa: E402
from sost_jax.inference.catalogue import read_catalogue  # noqa: E402
from sost_jax.inference.runner import iter_parts  # noqa: E402
from sost_jax.library.templates import Library, write_library  # noqa: E402

SHARD = 20_000  # spectra written per store shard (never all N in memory)
FRACTIONS = (0.1, 0.5, 1.0)


def write_store(root: Path, n: int, n_pixels: int) -> Path:
    """A prepared store of ``n`` random spectra with ids ``0 .. n-1``."""
    wave = np.arange(n_pixels, dtype=np.float64)
    n_shards = -(-n // SHARD)
    writer = StoreWriter(root, wave, {}, n_shards)
    for i in range(n_shards):
        lo, hi = i * SHARD, min((i + 1) * SHARD, n)
        flux, weight = random_targets(hi - lo, n_pixels, seed=100 + i)
        nan = np.full((hi - lo, 3), np.nan, np.float32)
        writer.write_shard(i, flux, weight, nan, {"id": np.arange(lo, hi).astype(str)})
    return root


def _command(store: Path, library: Path, out: Path, chunk: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sost_jax.cli",
        "infer",
        str(store),
        "--library",
        str(library),
        "--out",
        str(out),
        "--quiet",
        "--set",
        f"infer.chunk_size={chunk}",
    ]


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far [MB] (Linux VmHWM), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _n_parts(out: Path) -> int:
    return len(list((out / "parts").glob("part-[0-9][0-9][0-9][0-9][0-9].npz")))


def straight_run(cmd: list[str], out: Path, n_parts: int) -> dict[str, Any]:
    """One uninterrupted run: seconds, and peak RSS when 10 / 50 / 100% of parts exist."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss: dict[float, float] = {}
    last = 0.0
    while proc.poll() is None:
        last = max(last, _peak_rss_mb(proc.pid))
        done = _n_parts(out) / n_parts
        for f in FRACTIONS[:-1]:
            if done >= f and f not in rss:
                rss[f] = last
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    log = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"infer failed (rc {proc.returncode}):\n{log[-3000:]}")
    rss[1.0] = last  # sampled up to the last moment the process was alive
    return {"seconds": seconds, "rss": rss, "log": log}


def killed_run(
    cmd: list[str], out: Path, n_parts: int, kills: int, part_s: float, rng
) -> dict[str, Any]:
    """Start, SIGKILL at a random point of the work, start again ... ``kills`` times; then
    let the last start finish. The points: a random number of parts on disk (distinct,
    increasing), plus a random fraction of one part's time, so a kill lands mid-part."""
    targets = np.sort(rng.choice(np.arange(1, n_parts), size=kills, replace=False))
    done_at_kill = []
    t0 = time.perf_counter()
    for target in targets:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = max(target, _n_parts(out) + 1)  # at least one part more than last time
        while proc.poll() is None and _n_parts(out) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, part_s))
        if proc.poll() is not None:
            raise RuntimeError("the run ended before it could be killed; raise --n")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_at_kill.append(_n_parts(out))
    final = subprocess.run(cmd, capture_output=True, text=True)
    if final.returncode != 0:
        raise RuntimeError(f"the resumed infer failed:\n{final.stdout[-2000:]}{final.stderr}")
    return {"seconds": time.perf_counter() - t0, "parts_at_kills": done_at_kill}


def compare(straight: Path, killed: Path) -> dict[str, Any]:
    """Rows lost, rows duplicated, and whether the two catalogues are equal row for row."""
    a = read_catalogue(straight / "catalogue.fits")
    b = read_catalogue(killed / "catalogue.fits")
    part_ids = np.concatenate([np.asarray(p["id"]) for p in iter_parts(killed)])
    lost = np.setdiff1d(np.asarray(a["id"]), np.asarray(b["id"])).size
    duplicated = part_ids.size - np.unique(part_ids).size
    duplicated += np.asarray(b["id"]).size - np.unique(np.asarray(b["id"])).size
    equal = list(a) == list(b) and all(
        np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=a[k].dtype.kind == "f")
        for k in a
    )
    return {"rows_lost": int(lost), "rows_duplicated": int(duplicated), "catalogue_equal": equal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="spectra in the store")
    parser.add_argument("--templates", type=int, default=2413)
    parser.add_argument("--pixels", type=int, default=4800)
    parser.add_argument("--chunk", type=int, default=4096, help="infer.chunk_size")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="of the kill times")
    parser.add_argument("--quick", action="store_true", help="20k spectra, 1000 pixels")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.n, args.pixels, args.templates, args.chunk = 20_000, 1000, 400, 1024
    started = time.perf_counter()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sost-scale-"))
    try:
        t0 = time.perf_counter()
        store = write_store(work / "store", args.n, args.pixels)
        templates, labels = random_library(args.templates, args.pixels)
        wave = np.arange(args.pixels, dtype=np.float64)
        library = write_library(
            work / "library.fits", Library(wave, templates, labels, {"kind": "random"})
        )
        write_s = time.perf_counter() - t0
        n_parts = -(-args.n // args.chunk)

        straight = straight_run(
            _command(store, library, work / "straight", args.chunk), work / "straight", n_parts
        )
        rng = np.random.default_rng(args.seed)
        killed = killed_run(
            _command(store, library, work / "killed", args.chunk),
            work / "killed",
            n_parts,
            args.kills,
            straight["seconds"] / n_parts,
            rng,
        )
        result: dict[str, Any] = {
            "n_spectra": args.n,
            "n_pixels": args.pixels,
            "n_templates": args.templates,
            "chunk_size": args.chunk,
            "n_parts": n_parts,
            "store_write_seconds": round(write_s, 1),
            "straight_seconds": round(straight["seconds"], 1),
            "spectra_per_s": round(args.n / straight["seconds"], 1),
            **{f"max_rss_mb_{round(100 * f)}pct": round(straight["rss"][f], 1) for f in FRACTIONS},
            "kills": args.kills,
            "parts_done_at_kills": killed["parts_at_kills"],
            "killed_total_seconds": round(killed["seconds"], 1),
            **compare(work / "straight", work / "killed"),
        }
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(result)
    write_result(args.out, result, started)


def print_table(r: dict[str, Any]) -> None:
    print(f"\nsost-jax infer over a store of {r['n_spectra']} spectra x {r['n_pixels']} pixels")
    print(f"against {r['n_templates']} templates, parts of {r['chunk_size']}\n")
    print(f"{'straight run':34s} {r['straight_seconds']:8.1f} s  {r['spectra_per_s']:8.0f} /s")
    for f in FRACTIONS:
        key = f"max_rss_mb_{round(100 * f)}pct"
        print(f"  peak RSS at {round(100 * f):3d}% of the parts   {r[key]:8.0f} MB")
    print(
        f"{'killed ' + str(r['kills']) + ' times, then finished':34s} "
        f"{r['killed_total_seconds']:8.1f} s  (parts on disk at the kills: "
        f"{r['parts_done_at_kills']})"
    )
    print(f"  rows lost {r['rows_lost']}, rows duplicated {r['rows_duplicated']}, ", end="")
    print(f"catalogue equal to the straight run's: {r['catalogue_equal']}\n")


if __name__ == "__main__":
    main()
