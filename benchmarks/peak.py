"""The machine's float32 matrix-multiply peak, measured with XLA, NumPy's BLAS and torch
(if installed).

    python benchmarks/peak.py [--sizes 2048 4096] [--repeats 3]

The best time over a few repeats of large square products; GFLOP/s counts 2 n^3 per product.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def jax_matmul_peak(sizes: Sequence[int] = (2048, 4096), repeats: int = 3) -> float:
    """Best float32 ``a @ b`` rate of XLA on square matrices, GFLOP/s.

    Parameters
    ----------
    sizes : sequence of int
        Matrix sizes n (products of [n, n] by [n, n]).
    repeats : int
        Timed products per size after one warm-up; the fastest counts.
    """
    matmul = jax.jit(jnp.matmul)
    best = 0.0
    for n in sizes:
        ka, kb = jax.random.split(jax.random.key(n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        jax.block_until_ready(matmul(a, b))
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(matmul(a, b))
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _host_peak(multiply, convert, sizes: Sequence[int], repeats: int) -> float:
    """Best rate of ``multiply(a, b)`` on square float32 matrices made on the host and
    passed through ``convert``, GFLOP/s (one untimed warm-up product per size)."""
    best = 0.0
    rng = np.random.default_rng(0)
    for n in sizes:
        a = convert(rng.standard_normal((n, n), dtype=np.float32))
        b = convert(rng.standard_normal((n, n), dtype=np.float32))
        multiply(a, b)
        for _ in range(repeats):
            t0 = time.perf_counter()
            multiply(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def numpy_matmul_peak(sizes: Sequence[int] = (2048, 4096), repeats: int = 3) -> float:
    """Best float32 ``a @ b`` rate of NumPy's BLAS on square matrices, GFLOP/s."""
    return _host_peak(np.matmul, np.asarray, sizes, repeats)


def torch_matmul_peak(sizes: Sequence[int] = (2048, 4096), repeats: int = 3) -> float | None:
    """Best float32 ``torch.mm`` rate on square matrices, GFLOP/s; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return _host_peak(torch.mm, torch.from_numpy, sizes, repeats)


def provenance() -> dict[str, str | int]:
    """Commit, date and machine of this run, for a results file.

    ``git_commit`` is the checked-out commit with ``+dirty`` when tracked files other than
    the results files differ from it ("unknown" outside a git checkout): results written by
    an earlier benchmark of the same session do not change the code measured.
    """
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    changed = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":/",
        ":(top,exclude)benchmarks/results",
    )
    if commit != "unknown" and changed:
        commit += "+dirty"
    return {
        "git_commit": commit,
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
        "cpu_count": os.cpu_count() or 0,
    }


def write_result(path: Path, result: dict, started: float) -> None:
    """Stamp the run time and `provenance` into ``result`` (keys it already has, e.g. a
    provenance taken when a long run started, are kept) and write it as JSON to ``path``."""
    for key, value in provenance().items():
        result.setdefault(key, value)
    result["benchmark_seconds"] = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path} ({result['benchmark_seconds']:.0f} s in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"XLA   float32 matmul peak: {jax_matmul_peak(args.sizes, args.repeats):8.1f} GFLOP/s")
    numpy_peak = numpy_matmul_peak(args.sizes, args.repeats)
    print(f"NumPy float32 matmul peak: {numpy_peak:8.1f} GFLOP/s")
    torch_peak = torch_matmul_peak(args.sizes, args.repeats)
    if torch_peak is not None:
        print(f"torch float32 matmul peak: {torch_peak:8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
