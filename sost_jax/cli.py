"""The ``sost-jax`` command: demo, mock, prepare, pair, train, library, infer, calibrate,
evaluate."""

from __future__ import annotations

import argparse
import csv
import glob
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sost_jax.config import load_settings, save_config
from sost_jax.errors import SostError

log = logging.getLogger("sost_jax")

_FITS_PATTERNS = ("*.fits", "*.fits.gz", "*.fit", "*.fit.gz", "*.fts")


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files, directories (their FITS files) and ``@list.txt`` files -> sorted file list."""
    paths: list[str] = []
    for item in items:
        if item.startswith("@"):
            lines = Path(item[1:]).read_text().splitlines()
            paths += [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        elif os.path.isdir(item):
            for pattern in _FITS_PATTERNS:
                paths += glob.glob(os.path.join(item, pattern))
        else:
            paths.append(item)
    return sorted(set(paths))


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (.py with get_config(), or a saved .json)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set preprocess.grid_step=2.0 (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_distributed_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one of several processes running this command (jax.distributed; see README)",
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from sost_jax.config import cpu_config
    from sost_jax.demo.run import run_demo

    settings = load_settings(args.config, args.overrides, base=cpu_config)
    summary = run_demo(settings, args.workdir, progress=not args.quiet)
    print(f"\nsost-jax demo: outputs in {summary['workdir']}")
    print(f"{'part':16s} {'spectra':>8s} {'skipped':>8s}")
    for name, n in summary["n_spectra"].items():
        print(f"{name:16s} {n:8d} {summary['failures'][name]:8d}")
    print(f"\nthe test set parameterised with each library (est - truth):\n{summary['table']}")
    gaps = ", ".join(f"{k} {100 * v:.0f}%" for k, v in summary["gap_closed"].items())
    print(f"raw -> oracle scatter gap closed by SOST: {gaps}")
    print(f"runtime {summary['runtime_minutes']:.1f} min; report: {summary['report']}")
    return 0


def _cmd_mock(args: argparse.Namespace) -> int:
    from sost_jax.mock import write_mock_lamost_survey

    mock = load_settings(args.config, args.overrides).mock
    labels = write_mock_lamost_survey(args.out, args.n, mock, seed=args.seed)
    print(f"wrote {args.n} mock LAMOST files and {labels}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from sost_jax.data.io import labels_by_id, read_reference_catalog
    from sost_jax.data.prepare_files import prepare_files

    settings = load_settings(args.config, args.overrides)
    paths = expand_inputs(args.inputs)
    if not paths:
        print("sost-jax prepare: no input files found", file=sys.stderr)
        return 2
    labels = labels_by_id(read_reference_catalog(args.labels)) if args.labels else None
    Path(args.out).mkdir(parents=True, exist_ok=True)
    save_config(settings, Path(args.out) / "config.json")
    data = settings.data
    store = prepare_files(
        paths,
        args.out,
        settings.preprocess,
        labels=labels,
        reader=data.reader,
        workers=data.reader_workers,
        shard_size=data.shard_size,
        chunk_size=data.chunk_size,
        progress=not args.quiet,
    )
    failures = store.failures()
    if not len(store):
        return _none_usable("prepare", len(paths), failures, f"{args.out}/shards/*/failures.csv")
    print(f"prepared {len(store)} of {len(paths)} spectra into {args.out}")
    if failures:
        print(f"skipped {len(failures)} (listed in {args.out}/shards/*/failures.csv), e.g.:")
        for path, reason in failures[:5]:
            print(f"  {path}: {reason}")
    return 0


def _none_usable(command: str, n: int, failures: list, listed: str) -> int:
    """Exit status 2 with one line when a run could use none of its ``n`` inputs (what it
    wrote stays: an empty store or catalogue, and the reasons, listed in ``listed``)."""
    example = f"; e.g. {failures[0][0]}: {failures[0][1]}" if failures else ""
    print(
        f"sost-jax {command}: none of the {n} inputs could be used{example} (all in {listed})",
        file=sys.stderr,
    )
    return 2


def _cmd_pair(args: argparse.Namespace) -> int:
    from sost_jax.data.store import PreparedStore
    from sost_jax.library.emulator import Emulator
    from sost_jax.sost.pairing import paired_store

    observed = PreparedStore(args.observed)
    store = paired_store(Emulator.load(args.emulator), observed, args.out)
    n_paired = store.info["n_paired"]
    print(f"{n_paired} of {len(store)} observed spectra have a synthetic partner: {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from sost_jax.sost.training import TrainingDiverged, train_and_evaluate

    overrides = list(args.overrides)
    if args.synthetic:
        overrides.append(f"train.synthetic_store={args.synthetic!r}")
    if args.observed:
        overrides.append(f"train.observed_store={args.observed!r}")
    if args.paired:
        overrides.append(f"train.paired_store={args.paired!r}")
    if args.distributed:
        overrides.append("train.distributed=True")
    settings = load_settings(args.config, overrides)
    try:
        result = train_and_evaluate(settings, args.workdir, progress=not args.quiet)
    except TrainingDiverged as err:
        print(f"sost-jax train: {err}", file=sys.stderr)
        return 3
    print(
        f"trained to step {result['step']} in {result['minutes']:.1f} min; "
        f"outputs in {args.workdir}"
    )
    for key, value in result.items():
        if key.startswith("val_"):
            print(f"  {key:16s} {value:.4f}")
    return 0


def _cmd_library(args: argparse.Namespace) -> int:
    from sost_jax.library.recipe import make_libraries

    settings = load_settings(args.config, args.overrides)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    save_config(settings, Path(args.out) / "config.json")
    summary = make_libraries(
        settings,
        args.out,
        args.reference,
        emulator=args.emulator,
        grid_store=args.grid,
        run=args.run,
        observed=args.observed,
        progress=not args.quiet,
    )
    print(f"{summary['n_templates']} templates")
    for key in ("raw", "sost"):
        if key in summary:
            print(f"  {key:4s} library: {summary[key]}")
    if "style_source" in summary:
        print(f"  style source: {summary['style_source']}")
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from sost_jax.data.io import labels_by_id, read_reference_catalog
    from sost_jax.data.store import PreparedStore
    from sost_jax.inference.runner import infer_files, infer_store

    if args.distributed:
        from sost_jax.runtime.distributed import start_processes

        start_processes()
    run = load_settings(args.config, args.overrides)
    settings, data = run.infer, run.data
    progress = not args.quiet
    Path(args.out).mkdir(parents=True, exist_ok=True)
    save_config(run, Path(args.out) / "config.json")
    if len(args.inputs) == 1 and PreparedStore.is_store(args.inputs[0]):
        summary = infer_store(args.inputs[0], args.library, args.out, settings, progress=progress)
    else:
        paths = expand_inputs(args.inputs)
        if not paths:
            print("sost-jax infer: no input files found", file=sys.stderr)
            return 2
        labels = labels_by_id(read_reference_catalog(args.labels)) if args.labels else None
        summary = infer_files(
            paths,
            args.library,
            args.out,
            run.preprocess,
            settings,
            labels=labels,
            reader=data.reader,
            workers=data.reader_workers,
            read_chunk=data.chunk_size,
            progress=progress,
        )
    if "n_rows" not in summary:  # a process other than 0 of a multi-process run
        return 0
    if not summary["n_rows"]:
        with open(summary["failures"], newline="") as fh:
            failures = [tuple(row) for row in csv.reader(fh)][1:]
        return _none_usable("infer", len(failures), failures, summary["failures"])
    print(f"catalogue of {summary['n_rows']} spectra: {summary['catalogue']}, {summary['csv']}")
    if summary["spectra_per_s"]:
        print(f"  {summary['spectra_per_s']:.0f} spectra/s in this call")
    if summary["n_failures"]:
        print(f"  {summary['n_failures']} inputs skipped, listed in {summary['failures']}")
    for name, count in summary["flag_counts"].items():
        print(f"  flag {name:10s} {count:8d}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from sost_jax.inference.catalogue import read_catalogue
    from sost_jax.inference.fit.stage import calibrate_catalogue
    from sost_jax.library.templates import read_library

    ref_err = None
    if args.ref_err:
        ref_err = [float(v) for v in args.ref_err.split(",")]
        if len(ref_err) != 3:
            print("sost-jax calibrate: --ref-err takes three values", file=sys.stderr)
            return 2
    calibration, path = calibrate_catalogue(
        read_catalogue(args.catalogue),
        read_library(args.library).meta,
        ref_err,
        source=str(Path(args.catalogue).absolute()),
    )
    print(f"error calibration written to {path} (later fits through this emulator use it)")
    for i, name in enumerate(("Teff [K]", "log g [dex]", "[Fe/H] [dex]")):
        print(
            f"  {name:13s} scale {calibration.scale[i]:6.2f}  floor {calibration.floor[i]:8.4g}"
            f"  ({calibration.n_stars[i]} stars)"
        )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from sost_jax.evaluation.report import evaluate_catalogues, format_table

    names = args.names.split(",") if args.names else [Path(c).stem for c in args.catalogues]
    if len(names) != len(args.catalogues) or len(set(names)) != len(names):
        print("sost-jax evaluate: give one distinct --names entry per catalogue", file=sys.stderr)
        return 2
    result = evaluate_catalogues(
        dict(zip(names, args.catalogues, strict=True)),
        args.reference,
        args.out,
        by=args.by,
        radius_arcsec=args.radius,
    )
    print(format_table(result["tables"]))
    print(f"report: {result['report']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sost-jax",
        description="Synthetic-to-Observed Spectral Translation (SOST) in JAX.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of input errors too"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo", help="the whole method on the embedded mock survey (configs/cpu.py defaults)"
    )
    p.add_argument("--workdir", default="sost_demo", help="output folder (default sost_demo)")
    _add_config_args(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("mock", help="write mock LAMOST-layout FITS files with known labels")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=1000, help="number of spectra")
    p.add_argument("--seed", type=int, default=None, help="seed (default: mock.seed)")
    _add_config_args(p)
    p.set_defaults(func=_cmd_mock)

    p = sub.add_parser("prepare", help="spectrum files -> a prepared store")
    p.add_argument("inputs", nargs="+", help="FITS files, folders of them, or @list.txt")
    p.add_argument("--out", required=True, help="store folder (resumed if it exists)")
    p.add_argument("--labels", help="catalogue (CSV/FITS) with id, teff, logg, feh")
    _add_config_args(p)
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser(
        "pair", help="synthetic partners of labelled observed spectra (for loss.paired)"
    )
    p.add_argument("--emulator", required=True, help="a saved emulator (folder)")
    p.add_argument("--observed", required=True, help="observed store with reference labels")
    p.add_argument("--out", required=True, help="partner store folder (resumed if it exists)")
    p.set_defaults(func=_cmd_pair)

    p = sub.add_parser("train", help="train SOST on two prepared stores (resumes a workdir)")
    p.add_argument("--workdir", required=True, help="run folder: checkpoints, metrics, config")
    p.add_argument("--synthetic", help="prepared store of the synthetic domain")
    p.add_argument("--observed", help="prepared store of the observed domain")
    p.add_argument("--paired", help="synthetic partners of the observed store (sost-jax pair)")
    _add_distributed_arg(p)
    _add_config_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "library", help="template libraries: raw synthetic and SOST-translated (FITS)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--reference", required=True, help="reference labels: a prepared store or a catalogue"
    )
    p.add_argument("--emulator", help="a saved emulator (folder)")
    p.add_argument("--grid", help="synthetic grid store to train the emulator on")
    p.add_argument("--run", help="training run folder; without it only the raw library")
    p.add_argument("--observed", help="observed store for the matched style source")
    _add_config_args(p)
    p.set_defaults(func=_cmd_library)

    p = sub.add_parser("infer", help="Teff, log g, [Fe/H] of spectra -> catalogue (resumes)")
    p.add_argument("inputs", nargs="+", help="FITS files, folders, @list.txt, or one store")
    p.add_argument("--library", required=True, help="template library FITS file")
    p.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    p.add_argument("--labels", help="reference catalogue (id, teff, logg, feh) to carry along")
    _add_distributed_arg(p)
    _add_config_args(p)
    p.set_defaults(func=_cmd_infer)
    p = sub.add_parser(
        "calibrate",
        help="errors of fits: scale and floor from a fit catalogue with reference labels",
    )
    p.add_argument("catalogue", help="catalogue of infer.method=fit with ref_* columns")
    p.add_argument("--library", required=True, help="the library the catalogue was made with")
    p.add_argument("--ref-err", help="errors of the reference labels: TEFF,LOGG,FEH (K, dex)")
    p.set_defaults(func=_cmd_calibrate)
    p = sub.add_parser("evaluate", help="catalogues against reference labels: tables, figures")
    p.add_argument("catalogues", nargs="+", help="catalogue files (FITS or CSV), one per library")
    p.add_argument("--reference", required=True, help="reference labels (CSV or FITS table)")
    p.add_argument("--out", required=True, help="output folder: report.md, figures/")
    p.add_argument("--names", help="comma-separated names of the catalogues (default: stems)")
    p.add_argument("--by", default="auto", choices=("auto", "id", "sky"), help="cross-match")
    p.add_argument("--radius", type=float, default=3.0, help="sky match radius [arcsec]")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sost-jax`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True)
    log.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        return args.func(args)
    except (SostError, FileNotFoundError, FileExistsError) as err:
        # what the user can mend: one line; anything else is a bug and keeps its traceback
        if args.debug:
            raise
        print(f"sost-jax {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
