"""The demo's results as a benchmark: `sost-jax demo` (the cpu config) on the mock survey.

Runs the demo into ``--workdir`` (resuming whatever is already there, so a finished demo
folder is only re-evaluated) and copies its flat result, ``demo.json``, to
benchmarks/results/demo.json: the fraction of the raw -> oracle scatter gap that SOST
closes per label (``gap_closed_teff|logg|feh``), bias, scatter and robust sigma per library
and label (``raw_teff_bias``, ``sost_logg_scatter``, ...), and ``runtime_minutes`` (of this
call: a fresh folder gives the demo's full runtime, about 15 minutes on 2 cores).

    python benchmarks/demo.py [--workdir sost_demo]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from peak import write_result

from sost_jax.config import cpu_config, load_settings
from sost_jax.demo.run import run_demo

RESULTS = Path(__file__).resolve().parent / "results" / "demo.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="sost_demo")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO, force=True)
    t0 = time.perf_counter()
    summary = run_demo(load_settings(None, base=cpu_config), args.workdir, progress=False)
    print(summary["table"])
    gaps = ", ".join(f"{k} {100 * v:.0f}%" for k, v in summary["gap_closed"].items())
    print(f"raw -> oracle scatter gap closed by SOST: {gaps}")
    write_result(args.out, json.loads(Path(summary["demo_json"]).read_text()), t0)


if __name__ == "__main__":
    main()
