"""Which SOST formulation to use: paper, reference, unpaired, paired, subset- and semi-paired,
with accurate and with biased reference labels, on the mock survey where the truth is known.

Every formulation is the whole demo (`sost_jax.demo.run.run_demo`: train, build the library,
parameterise the 2000 held-out test stars, compare with their true labels) on one shared
mock survey and emulator, at the same CPU scale (width 16, 2 residual blocks, 700 steps,
lr 1e-3 decaying over the second half), so the objective is what differs:

================  ==========================================================================
``reference``     configs/reference.py (the reference code's network, losses and order)
``paper``         configs/paper.py (the paper's loss weights, otherwise the reference's)
``unpaired``      configs/cpu_unpaired.py (change decoder, mean-gap term, no labels)
``paired``        configs/cpu.py: every observed star paired at survey-like labels (true
                  plus 100 K / 0.15 / 0.10 dex noise)
``subsetpaired``  the paired term only on a random 5% of the observed stars, at accurate
                  labels (true plus 50 K / 0.05 / 0.03 dex: a high-resolution overlap)
``semipaired``    the same 5% paired, and the mean-gap term of ``unpaired`` on all stars
================  ==========================================================================

With biased reference labels (``--set``-able ``LABEL_BIAS``: +80 K, log g compressed 15%
towards 3.5 dex, [Fe/H] -0.08 dex, in the spirit of LASP against APOGEE), only ``paired``
reads the biased labels: ``unpaired`` reads none and the subset of ``subsetpaired`` and
``semipaired`` has its own accurate labels, so their ``biased_*`` keys are the same runs.

Writes ``benchmarks/results/formulations.json`` (flat): per formulation ``gap_closed_*``,
``bias_*``, ``scatter_*`` (SOST library, est - truth on the test stars),
``to_oracle_*`` (mean |template - oracle template|), ``minutes_*``; ``biased_bias_*`` and
``biased_scatter_*``; the raw and oracle libraries' numbers. ``--curve`` runs instead the
longer runs of reference, paper and unpaired (2000 and 5000 steps; the 700-step point is the
plain run): their template distance and gap closed (``curve_{name}_{steps}_...``), each run
on the plain runs' mock survey and emulator (or, where there are none, on those the first
longer run makes), written to ``formulations_curve.json``. Each file holds one run's numbers
(with its ``git_commit``), rewritten after every formulation; runs resume from ``--workdir``.

    python benchmarks/formulations.py [--workdir DIR] [--only paired,unpaired]
                                      [--curve [--curve-steps 2000 5000]]
    python benchmarks/formulations.py --quick   # the tiny config, a smoke run (not the JSON)
    python benchmarks/formulations.py --dev --only unpaired --tag lowgan --set loss.gan=0.3

``--dev`` is for choosing a formulation's settings: it prints and writes (to
``--workdir``/dev.json) only the template distance to the oracle, a property of the library
that no test star enters, and never touches ``--out``; ``--set`` adds overrides to every
formulation run and ``--tag`` keeps such variants in their own folders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from peak import write_result

from sost_jax.config import load_settings
from sost_jax.demo.run import run_demo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "formulations.json"
CURVE_RESULTS = RESULTS.with_name("formulations_curve.json")
"""The longer runs of ``--curve``: a file of their own, so that each file is one run's."""
LABELS = ("teff", "logg", "feh")

#: The cpu config's scale, given to the reference and paper configs.
CPU_SCALE = [
    "model.dim=16",
    "model.n_res=2",
    "model.mlp_dim=64",
    "dis.dim=16",
    "train.steps=700",
    "train.decay_start=350",
    "train.lr=1e-3",
    "train.eval_every=100",
    "train.checkpoint_every=100",
    "train.log_every=20",
    "emulator.max_minutes=2.0",
]
#: configs/tiny.py's sizes, for --quick (a smoke run of every formulation in minutes).
TINY_SCALE = [
    "preprocess.grid_start=4000.0",
    "preprocess.grid_stop=5596.0",
    "preprocess.grid_step=4.0",
    "model.dim=4",
    "model.n_res=1",
    "model.mlp_dim=16",
    "model.style_dim=4",
    "dis.dim=4",
    "dis.n_layers=2",
    "dis.n_scales=2",
    "train.steps=6",
    "train.decay_start=3",
    "train.n_val=8",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "train.min_snr=0.0",
    "demo.n_synthetic=96",
    "demo.n_observed=96",
    "demo.n_test=16",
    "demo.n_reference=3000",
    "demo.tsne_points=20",
    "demo.pair_fraction=0.2",
    "emulator.hidden=[32]",
    "emulator.max_epochs=20",
    "mock.grid.teff_step=1500.0",
    "mock.grid.logg_step=2.5",
    "mock.grid.feh_step=1.5",
]
SUBSET = ["demo.pair_fraction=0.05"]
#: What semi-paired adds to subset-paired: cpu_unpaired's label-free term, over all stars.
UNPAIRED_TERMS = ["loss.mean_gap=10.0"]
LABEL_BIAS = [
    "demo.label_bias.teff_offset=80.0",
    "demo.label_bias.logg_pull=0.15",
    "demo.label_bias.logg_pivot=3.5",
    "demo.label_bias.feh_offset=-0.08",
]
FORMULATIONS: dict[str, tuple[str, list[str]]] = {
    "paired": ("configs/cpu.py", []),
    "unpaired": ("configs/cpu_unpaired.py", []),
    "subsetpaired": ("configs/cpu.py", SUBSET),
    "semipaired": ("configs/cpu.py", SUBSET + UNPAIRED_TERMS),
    "paired_biased": ("configs/cpu.py", LABEL_BIAS),
    "reference": ("configs/reference.py", CPU_SCALE),
    "paper": ("configs/paper.py", CPU_SCALE),
}
#: Runs whose labels the bias does not touch (see the module docstring).
SAME_UNDER_BIAS = ("unpaired", "subsetpaired", "semipaired")
CURVE = ("reference", "paper", "unpaired")
CURVE_STEPS = (700, 2000, 5000)


def _share(first: Path, work: Path) -> None:
    """Point ``work``'s mock survey and emulator at ``first``'s (made once)."""
    work.mkdir(parents=True, exist_ok=True)
    for part in ("mock", "emulator"):
        link = work / part
        if not link.exists():
            os.symlink((first / part).absolute(), link)


def run(
    name: str,
    config_file: str,
    overrides: list[str],
    work: Path,
    first: Path | None,
    show: bool = True,
) -> dict[str, Any]:
    """One formulation's demo; its flat result (demo.json) and minutes. ``show`` logs the
    test-set table (off when choosing settings)."""
    settings = load_settings(ROOT / config_file, overrides)
    if first is not None and first != work:
        _share(first, work)
    t0 = time.perf_counter()
    summary = run_demo(settings, work, progress=False)
    flat = json.loads(Path(summary["demo_json"]).read_text())
    flat["benchmark_minutes"] = (time.perf_counter() - t0) / 60
    if show:
        logging.info("%s: %s", name, summary["table"])
    return flat


def _keys(flat: dict[str, Any], suffix: str, prefix: str = "") -> dict[str, Any]:
    out = {f"{prefix}to_oracle_{suffix}": flat["sost_mean_abs_diff_to_oracle"]}
    for label in LABELS:
        out[f"{prefix}gap_closed_{label}_{suffix}"] = flat[f"gap_closed_{label}"]
        out[f"{prefix}bias_{label}_{suffix}"] = flat[f"sost_{label}_bias"]
        out[f"{prefix}scatter_{label}_{suffix}"] = flat[f"sost_{label}_scatter"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("formulations_work"))
    parser.add_argument("--out", type=Path, default=None, help="default: RESULTS or CURVE_RESULTS")
    parser.add_argument("--only", default="", help="comma-separated formulations")
    parser.add_argument("--curve", action="store_true", help="only the longer runs (--curve-steps)")
    parser.add_argument(
        "--curve-steps", type=int, nargs="+", default=list(CURVE_STEPS[1:]), metavar="N"
    )
    parser.add_argument("--quick", action="store_true", help="tiny config smoke run")
    parser.add_argument("--dev", action="store_true", help="template distance only")
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides")
    parser.add_argument("--tag", default="", help="suffix of the run folders")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO, force=True)
    logging.getLogger("absl").setLevel(logging.WARNING)
    names = [n for n in args.only.split(",") if n] or list(FORMULATIONS)
    unknown = sorted(set(names) - set(FORMULATIONS))
    if unknown:
        raise SystemExit(f"unknown formulations {unknown}; known: {sorted(FORMULATIONS)}")
    started = time.perf_counter()
    out = args.out or (CURVE_RESULTS if args.curve else RESULTS)
    result: dict[str, Any] = {}  # this run's numbers only, never merged into an older file
    first: Path | None = None
    if args.curve:
        # The plain runs' mock survey and emulator where they exist; otherwise the first
        # longer run makes them (every formulation's mock and emulator settings are equal).
        first = args.workdir / "paired" if (args.workdir / "paired" / "mock").exists() else None
        for name in [n for n in names if n in CURVE]:
            config_file, overrides = FORMULATIONS[name]
            for steps in args.curve_steps:
                schedule = [f"train.steps={steps}", f"train.decay_start={steps // 2}"]
                more = [*overrides, *args.set, *schedule]
                work = args.workdir / f"{name}_{steps}"
                longer = run(name, config_file, more, work, first)
                first = first or work
                result.update(_keys(longer, f"{name}_{steps}", prefix="curve_"))
                result[f"curve_minutes_{name}_{steps}"] = round(longer["benchmark_minutes"], 2)
                write_result(out, result, started)
        return
    for name in names:
        config_file, overrides = FORMULATIONS[name]
        if args.quick:  # the formulation's settings at the tiny config's sizes
            overrides = [o for o in overrides if o not in CPU_SCALE] + TINY_SCALE
        overrides = [*overrides, *args.set]
        work = args.workdir / (f"{name}_{args.tag}" if args.tag else name)
        if first is None and (args.workdir / "paired" / "mock").exists():
            first = args.workdir / "paired"  # a shared mock survey and emulator exist
        flat = run(name, config_file, overrides, work, first, show=not args.dev)
        first = first or work
        if args.dev:
            dev_path = args.workdir / "dev.json"
            dev = json.loads(dev_path.read_text()) if dev_path.exists() else {}
            dev[work.name] = {
                "overrides": overrides,
                "to_oracle": flat["sost_mean_abs_diff_to_oracle"],
                "to_oracle_raw": flat["raw_mean_abs_diff_to_oracle"],
                "train_minutes": flat["train_minutes"],
            }
            dev_path.write_text(json.dumps(dev, indent=1) + "\n")
            print(
                f"{work.name}: templates {100 * dev[work.name]['to_oracle']:.3f}% from the "
                f"oracle (raw {100 * flat['raw_mean_abs_diff_to_oracle']:.3f}%)"
            )
            continue
        if name == "paired_biased":
            result.update(_keys(flat, "paired", prefix="biased_"))
        else:
            result.update(_keys(flat, name))
            result[f"minutes_{name}"] = round(flat["benchmark_minutes"], 2)
            if name in SAME_UNDER_BIAS:
                result.update(_keys(flat, name, prefix="biased_"))
        result["to_oracle_raw"] = flat["raw_mean_abs_diff_to_oracle"]
        for lib in ("raw", "oracle"):
            for label in LABELS:
                result[f"{lib}_bias_{label}"] = flat[f"{lib}_{label}_bias"]
                result[f"{lib}_scatter_{label}"] = flat[f"{lib}_{label}_scatter"]
        if not args.quick:
            write_result(out, result, started)  # after each formulation: a stop keeps them
    if args.dev:
        return
    print(f"{'formulation':<14} {'to oracle':>9}  gap closed Teff / log g / [Fe/H]")
    for name in [n for n in names if n in FORMULATIONS and n != "paired_biased"]:
        gaps = " / ".join(f"{100 * result[f'gap_closed_{lb}_{name}']:.0f}%" for lb in LABELS)
        print(f"{name:<14} {100 * result[f'to_oracle_{name}']:>8.2f}%  {gaps}")
    if "paired_biased" in names:
        for name in ("paired", *SAME_UNDER_BIAS):
            if f"biased_bias_teff_{name}" in result:
                row = ", ".join(
                    f"{result[f'biased_bias_{lb}_{name}']:+.3g}±{result[f'biased_scatter_{lb}_{name}']:.3g}"
                    for lb in LABELS
                )
                print(f"biased labels, {name:<14} {row}")


if __name__ == "__main__":
    main()
