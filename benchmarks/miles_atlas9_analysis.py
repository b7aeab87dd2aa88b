"""Where the libraries of a miles_atlas9 run gain and lose: by kind of star, by wavelength.

Reads what ``benchmarks/miles_atlas9.py --workdir DIR`` kept (the test store, every
library's catalogue of the test stars, the emulator and each formulation's SOST run); no
star is estimated again. It gives, for every library, bias and scatter per kind of star
(M stars, K giants, cool dwarfs, ...), with bootstrap 68% intervals; the stars each library
misses by most; and, for templates at the test stars' own labels, the rms difference from
the observed spectra in 50 Å bins, raw against translated (which wavelengths the
translation mends and which it leaves).

    python benchmarks/miles_atlas9_analysis.py --workdir DIR [--formulation paired]
        [--results benchmarks/results/miles_atlas9.json]

Writes benchmarks/results/miles_atlas9_analysis.json (a flat dict, one run) and
benchmarks/results/miles_atlas9/residual_by_wavelength.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from miles_atlas9 import FIGURES, MISSING_BANDS, differences  # noqa: E402
from miles_atlas9 import RESULTS as RUN_RESULTS  # noqa: E402
from miles_ck04 import templates_at_labels  # noqa: E402
from peak import provenance, write_result  # noqa: E402

from sost_jax.constants import LABEL_NAMES  # noqa: E402
from sost_jax.data.store import PreparedStore  # noqa: E402
from sost_jax.evaluation.crossmatch import crossmatch  # noqa: E402
from sost_jax.evaluation.figures.save import save_figure  # noqa: E402
from sost_jax.evaluation.metrics import bias_scatter, bootstrap_bias_scatter  # noqa: E402
from sost_jax.inference.catalogue import read_catalogue  # noqa: E402
from sost_jax.library.emulator import Emulator  # noqa: E402
from sost_jax.sost.translation import translator_from_run  # noqa: E402

RESULTS = HERE / "results" / "miles_atlas9_analysis.json"
#: Kinds of star: name -> (Teff range [K], log g range [dex], [Fe/H] range [dex]).
KINDS = {
    "m_stars": ((3500, 4000), (-1, 6), (-9, 9)),
    "k_giants": ((4000, 5200), (-1, 3.5), (-9, 9)),
    "gk_dwarfs": ((4000, 6000), (3.5, 6), (-9, 9)),
    "g_giants": ((5200, 6000), (-1, 3.5), (-9, 9)),
    "f_and_hotter": ((6000, 8001), (-1, 6), (-9, 9)),
    "metal_poor": ((3500, 8001), (-1, 6), (-9, -1.0)),
}
BIN = 50.0  # [Å] wavelength bins of the residual spectra


def catalogues(work: Path, test: PreparedStore, formulations: list[str]) -> dict[str, dict]:
    """est - ref per label of every library's grid estimates (and fits) of the test stars."""
    paths = {"raw": work / "infer_raw", "empirical": work / "infer_empirical"}
    paths.update({f: work / f / "infer_grid" for f in formulations})
    paths.update({"raw_fit": work / "infer_raw_fit"})
    paths.update({f"{f}_fit": work / f / "infer_fit" for f in formulations})
    ids = np.asarray(test.meta["id"]).astype(str)
    reference = {"id": ids, **{n: test.labels[:, i] for i, n in enumerate(LABEL_NAMES)}}
    out = {}
    for key, path in paths.items():
        if (path / "catalogue.fits").is_file():
            matched = crossmatch(read_catalogue(path / "catalogue.fits"), reference, by="id")
            out[key] = differences(matched, len(test))
    return out


def by_kind(diffs: dict[str, dict], labels: np.ndarray, n_boot: int) -> dict[str, Any]:
    """Bias and scatter per kind of star and library, with 68% intervals."""
    out: dict[str, Any] = {}
    for kind, ranges in KINDS.items():
        inside = np.ones(len(labels), bool)
        for i, (lo, hi) in enumerate(ranges):
            inside &= (labels[:, i] >= lo) & (labels[:, i] < hi)
        out[f"n_{kind}"] = int(inside.sum())
        for lib, d in diffs.items():
            for name in LABEL_NAMES:
                x = d[name][inside]
                s = bias_scatter(x)
                key = f"{name}_{lib}_{kind}"
                out[f"bias_{key}"], out[f"scatter_{key}"] = s["bias"], s["scatter"]
                if s["n"] > 2:
                    for stat, (lo, hi) in bootstrap_bias_scatter(x, n_boot).items():
                        out[f"{stat}_{key}_ci68_lo"], out[f"{stat}_{key}_ci68_hi"] = lo, hi
    return out


def worst(diffs: dict[str, dict], test: PreparedStore, libs: list[str], n: int = 8) -> dict:
    """The test stars each library misses by most in Teff: id, labels, est - ref."""
    ids = np.asarray(test.meta["id"]).astype(str)
    out = {}
    for lib in libs:
        d = np.nan_to_num(np.abs(diffs[lib]["teff"]), nan=-1.0)
        rows = np.argsort(-d)[:n]
        out[f"worst_teff_{lib}"] = "; ".join(
            f"{ids[r]} ({test.labels[r, 0]:.0f} K, {test.labels[r, 1]:.2f}, "
            f"{test.labels[r, 2]:+.2f}): {diffs[lib]['teff'][r]:+.0f} K"
            for r in rows
        )
    return out


def residual_spectra(work: Path, test: PreparedStore, formulation: str) -> dict[str, np.ndarray]:
    """rms over the test stars of (template - observed) at their own labels, raw and SOST."""
    emulator = Emulator.load(work / "emulator")
    translator = translator_from_run(work / formulation / "sost", n_pixels=test.n_pixels)
    templates = templates_at_labels(emulator, translator, PreparedStore(work / "pool"), test)
    good = templates["weight"] > 0
    cool = templates["labels"][:, 0] < 4000
    out = {"wave": test.wave}
    for key in ("raw", "sost"):
        sq = np.where(good, (templates[key] - templates["flux"]) ** 2, np.nan)
        out[key] = np.sqrt(np.nanmean(sq, axis=0))
        out[f"{key}_cool"] = np.sqrt(np.nanmean(sq[cool], axis=0))
    return out


def binned(residual: dict[str, np.ndarray]) -> dict[str, Any]:
    """50 Å bins: rms raw and SOST, and the bins where SOST mends most and least."""
    wave = residual["wave"]
    edges = np.arange(wave[0], wave[-1] + BIN, BIN)
    which = np.digitize(wave, edges) - 1
    raw = np.array(
        [np.sqrt(np.nanmean(residual["raw"][which == i] ** 2)) for i in range(len(edges) - 1)]
    )
    sost = np.array(
        [np.sqrt(np.nanmean(residual["sost"][which == i] ** 2)) for i in range(len(edges) - 1)]
    )
    mended = 1.0 - sost / raw
    order = np.argsort(mended)
    name = lambda i: f"{edges[i]:.0f}-{edges[i] + BIN:.0f}"  # noqa: E731
    return {
        "rms_raw_all": float(np.sqrt(np.nanmean(residual["raw"] ** 2))),
        "rms_sost_all": float(np.sqrt(np.nanmean(residual["sost"] ** 2))),
        "rms_raw_cool": float(np.sqrt(np.nanmean(residual["raw_cool"] ** 2))),
        "rms_sost_cool": float(np.sqrt(np.nanmean(residual["sost_cool"] ** 2))),
        "bins_mended_most": "; ".join(
            f"{name(i)} Å {raw[i]:.3f} -> {sost[i]:.3f}" for i in order[::-1][:6]
        ),
        "bins_mended_least": "; ".join(
            f"{name(i)} Å {raw[i]:.3f} -> {sost[i]:.3f}" for i in order[:6]
        ),
        "bins_largest_left": "; ".join(
            f"{name(i)} Å {raw[i]:.3f} -> {sost[i]:.3f}" for i in np.argsort(-sost)[:6]
        ),
    }


def plot_residuals(residual: dict[str, np.ndarray], path: Path, formulation: str) -> list[Path]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, suffix, title in ((axes[0], "", "all test stars"), (axes[1], "_cool", "Teff < 4000 K")):
        ax.plot(residual["wave"], residual["raw" + suffix], color="C0", lw=0.5, label="raw")
        ax.plot(
            residual["wave"],
            residual["sost" + suffix],
            color="C3",
            lw=0.5,
            label=f"SOST ({formulation})",
        )
        for k, (band, heads) in enumerate(MISSING_BANDS.items()):
            for j, head in enumerate(heads):
                ax.axvline(head, color=f"C{k + 4}", lw=0.7, ls="--", label=band if j == 0 else None)
        ax.set_ylabel("rms (template - observed)")
        ax.set_title(title, fontsize=9, loc="left")
    axes[0].legend(fontsize=8, ncol=4)
    axes[1].set_xlabel("wavelength [Å]")
    return save_figure(fig, path, pdf=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a miles_atlas9 workdir")
    parser.add_argument("--formulation", default="paired", help="whose translator to study")
    parser.add_argument(
        "--results", type=Path, default=RUN_RESULTS, help="the run's JSON (its formulations)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    result: dict[str, Any] = {**provenance(), "workdir": str(args.workdir)}
    run = json.loads(args.results.read_text())
    formulations = run["formulations"].split(",")
    result.update(formulations=run["formulations"], run_git_commit=run["git_commit"])
    test = PreparedStore(args.workdir / "test")
    diffs = catalogues(args.workdir, test, formulations)
    result.update(by_kind(diffs, np.asarray(test.labels), args.bootstrap))
    result.update(worst(diffs, test, ["raw", args.formulation, "empirical"]))
    residual = residual_spectra(args.workdir, test, args.formulation)
    result.update(binned(residual))
    plot_residuals(residual, args.figures / "residual_by_wavelength", args.formulation)
    for key, value in result.items():
        if key.startswith(("worst", "bins", "rms")):
            print(f"{key}: {value}")
    print("scatter Teff [K] per kind of star:")
    for kind in KINDS:
        row = "  ".join(
            f"{lib} {result[f'scatter_teff_{lib}_{kind}']:5.0f}"
            for lib in diffs
            if not lib.endswith("_fit")
        )
        print(f"  {kind:<13} (n={result[f'n_{kind}']:3d}) {row}")
    write_result(args.out, result, t0)


if __name__ == "__main__":
    main()
