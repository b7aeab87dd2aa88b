"""Readers against mutated files: every mutant is read or refused with a `ReadError`,
quickly and in bounded memory (no header value can hang a run or exhaust memory)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from sost_jax.data.io import ReadError, fitsfast, read_raw
from sost_jax.mock import MockSettings, write_mock_lamost_survey

DR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "lamost_dr10"
N_MUTANTS = 300  # per file
SECONDS_PER_FILE = 5
MEMORY_BYTES = 3 << 30

FUZZ = r"""
import collections, json, re, signal, sys, time
from pathlib import Path
import numpy as np
from sost_jax.data.io import ReadError, read_raw

def mutants(raw, rng, n):
    header_end = raw.find(b"END     ", raw.find(b"XTENSION=")) + 80
    ints = [
        m.start() for m in re.finditer(rb"[A-Z0-9_]{1,8} *= +[+-]?[0-9]+ ", raw[:header_end])
        if m.start() % 80 == 0
    ]
    for k in range(n):
        b, kind = bytearray(raw), ("value", "bitflip", "truncate", "value+non-ascii")[k % 4]
        if kind in ("value", "value+non-ascii"):  # an integer card's value
            i = ints[rng.integers(len(ints))]
            value = int(rng.choice([-1, 0, 1, 999, 1000, 10**6, 10**9, -10**9, 2**31]))
            b[i + 10 : i + 30] = f"{value:>20}".encode()
        if kind == "value+non-ascii":  # and the fast parser gives up: astropy's input
            b[int(rng.integers(header_end))] = 0xE9
        if kind == "bitflip":
            for _ in range(rng.integers(1, 8)):
                j = int(rng.integers(header_end))
                b[j] ^= 1 << int(rng.integers(8))
        if kind == "truncate":
            b = b[: int(rng.integers(len(b)))]
        yield kind, bytes(b)

def timeout(signum, frame):
    raise TimeoutError

signal.signal(signal.SIGALRM, timeout)
out, limit, n, files = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rng = np.random.default_rng(2026)
counts, bad, worst, t0 = collections.Counter(), [], 0.0, time.perf_counter()
for f in files:
    for kind, data in mutants(Path(f).read_bytes(), rng, n):
        path = out / "mutant.fits"
        path.write_bytes(data)
        signal.alarm(limit)
        start = time.perf_counter()
        try:
            read_raw(path)
            counts[f"{kind}: read"] += 1
        except ReadError:
            counts[f"{kind}: ReadError"] += 1
        except BaseException as err:  # a bug, a hang (TimeoutError) or MemoryError
            bad.append(f"{Path(f).name} {kind}: {type(err).__name__}: {err}"[:300])
            path.rename(out / f"bad{len(bad)}.fits")
        finally:
            signal.alarm(0)
        worst = max(worst, time.perf_counter() - start)
seconds = time.perf_counter() - t0
print(json.dumps({"counts": counts, "bad": bad, "worst_s": worst, "seconds": seconds}))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def test_mutated_files_are_read_or_refused_quickly_in_bounded_memory(tmp_path, capsys):
    write_mock_lamost_survey(tmp_path / "mock", 1, MockSettings(), seed=0)
    files = sorted((tmp_path / "mock").glob("*.fits")) + sorted(DR10.glob("*.fits"))[:1]
    args = [str(tmp_path), str(SECONDS_PER_FILE), str(N_MUTANTS), *map(str, files)]
    run = subprocess.run(
        [sys.executable, "-c", FUZZ, *args],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_memory,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    with capsys.disabled():  # the counts per outcome, in the test's output
        print(f"\nreader fuzz: {len(files) * N_MUTANTS} mutants in {result['seconds']:.1f} s")
        for outcome, count in sorted(result["counts"].items()):
            print(f"  {outcome:28s} {count:5d}")
    assert not result["bad"], result["bad"]
    assert sum(result["counts"].values()) == len(files) * N_MUTANTS
    assert result["worst_s"] < SECONDS_PER_FILE
    assert any(k.endswith("ReadError") for k in result["counts"])  # mutants that break


def test_absurd_structural_values_are_refused_before_the_astropy_fallback(tmp_path, monkeypatch):
    """NAXIS or TFIELDS of 10^6 in a header the fast parser gives up on (a non-ASCII byte)
    once held astropy for seconds to minutes, or took all memory: now a ReadError."""
    write_mock_lamost_survey(tmp_path, 1, MockSettings(), seed=0)
    good = next(tmp_path.glob("*.fits")).read_bytes()
    monkeypatch.setattr(fitsfast, "_read_hdus_astropy", pytest.fail)
    ext = good.find(b"XTENSION=")
    for key, start in (("NAXIS", 0), ("TFIELDS", ext)):
        raw = bytearray(good)
        i = raw.find(f"{key:<8}= ".encode(), start)
        raw[i : i + 80] = f"{key:<8}= {10**6:>20}".ljust(80).encode()
        raw[start + 1000] = 0xE9  # elsewhere in the same header
        path = tmp_path / f"{key}.fits"
        path.write_bytes(bytes(raw))
        with pytest.raises(ReadError, match=f"{key}=1000000"):
            read_raw(path)
