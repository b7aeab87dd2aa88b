"""Benchmark: labels of MILES stars from Kurucz templates, raw and translated by SOST.

The real-data test of the whole pipeline (the paper's Fig. 11 on public data). Settings are
in configs/miles_ck04.py.

* Observed domain: the MILES stars (../shared/data/miles) with Teff 3500-8000 K, log g 0-5,
  [Fe/H] -2.5..+0.5 (MILES_params.db). Stars whose MILES number is a multiple of 5 are the
  test set; the others are the training pool: SOST's observed domain, the reference
  catalogue whose cells the libraries are drawn in, the partners of the "matched" styles and
  the third library.
* Synthetic domain: the Castelli-Kurucz 2004 grid (../shared/data/ck04, Teff 3500-8000 K),
  prepared like MILES and learnt by the Payne-style emulator; SOST's synthetic training set
  is emulator spectra at the pool's labels (jittered), so that the two domains differ by the
  synthetic-to-observed gap and not also by their label distributions.
* Both on 3900-7400 Å in 10 Å pixels (351; the generators pad to a multiple of 4 and crop
  back), degraded to a Gaussian FWHM of 40 Å and divided by a P-spline pseudo-continuum
  (knots every 200 Å).
* Three libraries estimate the test stars by the two-best chi2 rule
  (`sost_jax.inference.estimate`):
  the raw Kurucz library (emulator spectra at one random triple per cell of the pool holding
  at least two stars), the SOST library (the same spectra translated, each with the style of
  its chi2-matched pool star) and the pool's own spectra (an empirical library). The chi2
  weights are the prepared test store's (MILES has no error spectra: unit variance per
  native pixel, carried through degrading and normalisation).

Nothing is tuned on the test stars. Settings were chosen a priori or on the pool alone:
``--dev`` runs the whole protocol with the pool's stars numbered 1 mod 5 as stand-in test
stars (the test stars are not read; with ``--workdir`` its table, figures and JSON go
there), and ``--select-knots`` compares continuum knot spacings by the empirical library's
label scatter inside the pool (MILES spectra only).

    python benchmarks/miles_ck04.py [--config configs/miles_ck04.py] [--dev]
                                    [--workdir DIR] [--select-knots 100 200 400]
                                    [key.path=value ...]

Prints progress, the table of bias and scatter per library beside the numbers measured
before with a simpler protocol, and the SOST / raw scatter ratios against the paper's
margins; writes benchmarks/results/miles_ck04.json (a flat dict), and the Fig. 11 figure,
the library's cells and a report under benchmarks/results/miles_ck04/. About 5 minutes on
2 idle cores (SOST's 4000 steps take 4); twice that when another job shares them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = HERE / "results" / "miles_ck04.json"
FIGURES = HERE / "results" / "miles_ck04"
sys.path.insert(0, str(HERE))

from peak import write_result  # noqa: E402

from sost_jax.config import load_config, validate  # noqa: E402
from sost_jax.constants import LABEL_NAMES  # noqa: E402
from sost_jax.data.io import read_ck04, read_miles_params  # noqa: E402
from sost_jax.data.prepare import prepare_arrays  # noqa: E402
from sost_jax.data.prepare_files import prepare_files, read_to_grid  # noqa: E402
from sost_jax.data.preprocess import normalise  # noqa: E402
from sost_jax.data.store import PreparedStore, StoreWriter  # noqa: E402
from sost_jax.evaluation.crossmatch import crossmatch  # noqa: E402
from sost_jax.evaluation.figures.kiel import plot_library_coverage  # noqa: E402
from sost_jax.evaluation.figures.labels import plot_estimates_vs_reference  # noqa: E402
from sost_jax.evaluation.metrics import summary_table  # noqa: E402
from sost_jax.evaluation.report import format_table, write_report  # noqa: E402
from sost_jax.inference.catalogue import read_catalogue  # noqa: E402
from sost_jax.inference.matching import make_matcher  # noqa: E402
from sost_jax.inference.runner import infer_store  # noqa: E402
from sost_jax.library.emulator import emulator_from_store  # noqa: E402
from sost_jax.library.recipe import make_libraries  # noqa: E402
from sost_jax.library.styles import style_source_from_spec  # noqa: E402
from sost_jax.library.templates import Library, read_library  # noqa: E402
from sost_jax.settings import apply_overrides  # noqa: E402
from sost_jax.sost.pairing import paired_store  # noqa: E402
from sost_jax.sost.training import train_and_evaluate  # noqa: E402
from sost_jax.sost.translation import translator_from_run  # noqa: E402

LIBRARIES = {
    "raw": "raw Kurucz",
    "sost": "SOST",
    "empirical": "training pool",
    "raw_fit": "raw Kurucz fit",
    "sost_fit": "SOST fit",
}
#: The continuous fit's rows: library key -> the grid library whose emulator is fitted.
FITS = {"raw_fit": "raw", "sost_fit": "sost"}
# Measured before with a simpler protocol (polynomial upper-envelope normalisation, two-best
# chi2, 165 test stars): (bias, scatter) in K, dex, dex. Printed beside this run's for
# comparison, never written into the results file (it holds only what a run measured).
REFERENCE = {
    "raw": {"teff": (262.0, 412.0), "logg": (-0.51, 1.35), "feh": (-0.03, 0.69)},
    "empirical": {"teff": (2.0, 246.0), "logg": (0.05, 0.54), "feh": (0.00, 0.36)},
}
# The paper's improvement of SOST over the raw synthetic library: relative scatter reduction.
PAPER_SCATTER_REDUCTION = {"teff": 0.14, "logg": 0.16, "feh": 0.38}
MAX_BIAS_FRACTION = 1 / 3  # |SOST bias| at most this fraction of |raw bias|


def log(t0: float, text: str) -> None:
    print(f"[{(time.perf_counter() - t0) / 60:5.2f} min] {text}", flush=True)


# --------------------------------------------------------------------------- data


def miles_split(config, dev: bool, section: str = "miles") -> dict[str, Any]:
    """Files and labels of the MILES test set and training pool.

    Stars need all three labels inside the library grid's ranges and a spectrum file. With
    ``dev`` the test stars are left out entirely and the pool's stars with number
    ``% test_modulus == dev_remainder`` become the test set. ``section`` names the config
    section holding ``test_modulus``, ``test_remainder`` and ``dev_remainder``.
    """
    cfg, grid = config[section], validate(config).library.grid
    catalogue = read_miles_params(DATA / "miles" / "MILES_params.db")
    labels = np.stack([catalogue[n] for n in LABEL_NAMES], axis=1)
    inside = np.isfinite(labels).all(axis=1)
    with np.errstate(invalid="ignore"):
        inside &= ((labels >= grid.low) & (labels <= grid.high)).all(axis=1)
    number = catalogue["miles_id"]
    paths = {n: DATA / "miles" / f"MILES_res2.50_star_m{n:04d}V.fits" for n in number[inside]}
    keep = np.array([inside[i] and paths[n].is_file() for i, n in enumerate(number)]) & inside
    remainder = number % cfg.test_modulus
    test = keep & (remainder == cfg.test_remainder)
    pool = keep & ~test
    if dev:
        test = pool & (remainder == cfg.dev_remainder)
        pool = pool & ~test
    label_dict = {f"m{n:04d}": tuple(float(v) for v in labels[i]) for i, n in enumerate(number)}
    return {
        "test_paths": [str(paths[n]) for n in number[test]],
        "pool_paths": [str(paths[n]) for n in number[pool]],
        "labels": label_dict,
        "n_catalogue": len(number),
        "n_in_range": int(keep.sum()),
    }


def uniform_weights(store: PreparedStore, out: Path) -> PreparedStore:
    """A copy of ``store`` whose pixel weights are 1 where it has data, 0 elsewhere.

    MILES has no error spectra: the reader gives unit inverse variance per native pixel,
    which normalisation turns into weights proportional to the continuum squared. Equal
    weights per pixel (the usual choice without errors) are used for chi2 matching instead.
    """
    data = store.read(np.arange(len(store)))
    info = {**store.info, "weights": "uniform: 1 where the input had data"}
    writer = StoreWriter(out, store.wave, info, n_shards=1)
    weight = (data["weight"] > 0).astype(np.float32)
    writer.write_shard(0, data["flux"], weight, data["labels"], store.meta, store.failures())
    return PreparedStore(out)


def prepare_miles(
    paths: list[str], labels: dict, out: Path, config, uniform: bool
) -> tuple[PreparedStore, PreparedStore]:
    """Prepare MILES files into a store, and the store matched against (uniform weights)."""
    store = prepare_files(
        paths,
        out,
        validate(config).preprocess,
        labels=labels,
        reader=config.data.reader,
        workers=2,
        progress=False,
    )
    if store.failures():
        print(f"  {len(store.failures())} MILES files skipped: {store.failures()[:3]}")
    if not uniform:
        return store, store
    return store, uniform_weights(store, out.with_name(out.name + "_uniform"))


def prepare_ck04(config, out: Path) -> PreparedStore:
    """The ck04 grid within the library's ranges, on the common grid and normalised."""
    grid_cfg = validate(config).library.grid
    grid = read_ck04(
        DATA / "ck04",
        teff_range=grid_cfg.teff_range,
        logg_range=grid_cfg.logg_range,
        feh_range=grid_cfg.feh_range,
        wave_range=tuple(config.miles.ck04_wave_range),
    )
    settings = replace(
        validate(config).preprocess,
        input_fwhm=float(config.miles.ck04_input_fwhm),
        input_medium=grid.meta["medium"],
    )
    n = grid.flux.shape[0]
    return prepare_arrays(
        out,
        grid.wave,
        grid.flux,
        np.ones_like(grid.flux),
        settings,
        labels=grid.params.astype(np.float32),
        meta={"id": np.array([f"ck04_{i}" for i in range(n)])},
        info={"source": "ck04", "root": str(DATA / "ck04")},
    )


def synthetic_domain(
    emulator, pool_labels: np.ndarray, config, out: Path, section: str = "miles"
) -> PreparedStore:
    """SOST's synthetic domain: emulator spectra at the pool's labels, jittered.

    Each of ``<section>.n_synthetic`` label triples is a random pool star's, plus Gaussian
    noise of ``<section>.label_jitter`` [K, dex, dex], clipped to the library grid's ranges
    (the emulator's training span).
    """
    grid, cfg = validate(config).library.grid, config[section]
    rng = np.random.default_rng(config.train.seed)
    n = int(cfg.n_synthetic)
    labels = pool_labels[rng.integers(0, len(pool_labels), n)].astype(np.float64)
    labels += rng.normal(size=labels.shape) * np.asarray(cfg.label_jitter)[None, :]
    labels = np.clip(labels, grid.low[None, :], grid.high[None, :]).astype(np.float32)
    flux = np.asarray(emulator.generate(labels), np.float32)
    writer = StoreWriter(out, emulator.wave, {"source": "emulator at jittered pool labels"}, 1)
    meta = {"id": np.array([f"syn_{i}" for i in range(n)])}
    writer.write_shard(0, flux, np.ones_like(flux), labels, meta)
    return PreparedStore(out)


# --------------------------------------------------------------------------- estimates


def estimate(
    library: Library, test: PreparedStore, out: Path, config
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Match the test stars against a library; the catalogue paired with their labels."""
    summary = infer_store(test, library, out, validate(config).infer, progress=False)
    catalogue = read_catalogue(summary["catalogue"])
    ids = np.asarray(test.meta["id"]).astype(str)
    reference = {"id": ids, **{n: test.labels[:, i] for i, n in enumerate(LABEL_NAMES)}}
    return crossmatch(catalogue, reference, by="id"), catalogue


def templates_at_labels(
    emulator, translator, pool: PreparedStore, test: PreparedStore
) -> dict[str, np.ndarray]:
    """Raw and translated templates at each test star's reference labels, and the star.

    Emulator spectra at the stars' labels, translated by SOST with the matched style (as in
    the library). Returns ``raw``, ``sost``, ``flux``, ``weight`` [N, P] and ``labels``
    [N, 3]. An evaluation only: the test labels choose nothing.
    """
    data = test.read(np.arange(len(test)))
    raw = np.asarray(emulator.generate(data["labels"]), np.float32)
    source = style_source_from_spec(
        "matched", translator.style_dim, observed=pool, encode=translator.observed_styles
    )
    styles, _ = source.styles_and_partners(raw)
    sost = np.asarray(translator(raw, np.asarray(styles)), np.float32)
    return {"raw": raw, "sost": sost, **data}


def translation_residuals(templates: dict[str, np.ndarray]) -> dict[str, float]:
    """How close raw and translated templates come to the test stars at their own labels.

    ``templates`` from `templates_at_labels`: the rms difference over each star's pixels
    with data, median and mean over stars.
    """
    good = templates["weight"] > 0
    out = {}
    for key in ("raw", "sost"):
        sq = np.where(good, (templates[key] - templates["flux"]) ** 2, 0.0)
        rms = np.sqrt(sq.sum(axis=1) / np.maximum(good.sum(axis=1), 1))
        out[f"oracle_rms_{key}_median"] = float(np.median(rms))
        out[f"oracle_rms_{key}_mean"] = float(np.mean(rms))
    return out


def select_knots(config, spacings: list[float], t0: float) -> None:
    """Empirical library's scatter inside the pool for several continuum knot spacings.

    The test stars are not read: the pool's stars numbered ``dev_remainder`` mod
    ``test_modulus`` are matched against the rest of the pool (``miles.match_weights``,
    two-best rule), for each spacing. Only MILES spectra are used, so the choice favours
    neither Kurucz library.
    """
    split = miles_split(config, dev=True)
    settings = validate(config).preprocess
    grids = {}
    for name in ("test", "pool"):
        part = read_to_grid(split[f"{name}_paths"], settings, config.data.reader)
        ids = [m["id"] for m in part["meta"]]
        grids[name] = (part, np.array([split["labels"][i] for i in ids]))
    log(t0, f"read {len(grids['pool'][1])} pool and {len(grids['test'][1])} dev stars")
    uniform = config.miles.match_weights == "uniform"
    rows = {}
    for spacing in spacings:
        norm = replace(settings.normalise, knot_spacing=float(spacing))
        flux = {}
        for name, (part, _) in grids.items():
            f, w, _ = normalise(settings.wave, part["flux"], part["ivar"], norm)
            flux[name] = (f, (w > 0).astype(np.float32) if uniform else w)
        matcher = make_matcher(flux["pool"][0], grids["pool"][1], k=2)
        found = matcher(*flux["test"])
        matched = {f"est_{n}": np.asarray(found[n], np.float64) for n in LABEL_NAMES}
        matched.update({f"ref_{n}": grids["test"][1][:, i] for i, n in enumerate(LABEL_NAMES)})
        rows[f"knots {spacing:g} Å"] = summary_table(matched)
    print(format_table(rows))
    # One number per spacing: the scatters in units of the empirical library's measured
    # before (246 K, 0.54 dex, 0.36 dex), summed; lower is better.
    print("sum of scatters in units of the earlier empirical library's:")
    for title, table in rows.items():
        score = sum(table[n]["scatter"] / REFERENCE["empirical"][n][1] for n in LABEL_NAMES)
        print(f"  {title}: {score:.3f}")


# --------------------------------------------------------------------------- report


def print_comparison(tables: dict[str, dict], result: dict[str, Any]) -> None:
    print("\nbias ± scatter (this run | measured before with the simpler protocol)")
    print(f"{'library':<16}{'Teff [K]':>28}{'log g [dex]':>30}{'[Fe/H] [dex]':>30}")
    for key, title in LIBRARIES.items():
        cells = []
        for name in LABEL_NAMES:
            s = tables[title][name]
            fmt = ".0f" if name == "teff" else ".2f"
            ours = f"{s['bias']:+{fmt}}±{s['scatter']:{fmt}}"
            if key in REFERENCE:
                b, sc = REFERENCE[key][name]
                ref = f"{b:+{fmt}}±{sc:{fmt}}"
            else:
                ref = "-"
            cells.append(f"{ours:>14} | {ref:<11}")
        print(f"{title:<16}" + "".join(f"{c:>30}" for c in cells))
    print("\nSOST against raw Kurucz (paper: scatter -14% Teff, -16% log g, -38% [Fe/H];")
    print("|bias| at most a third of raw's)")
    for name in LABEL_NAMES:
        ratio = result[f"scatter_ratio_{name}"]
        target = result[f"target_scatter_ratio_{name}"]
        bias_ratio = result[f"abs_bias_ratio_{name}"]
        print(
            f"  {name:<5} scatter ratio {ratio:5.2f} (target <= {target:.2f}: "
            f"{'met' if result[f'scatter_target_met_{name}'] else 'not met'}); |bias| ratio "
            f"{bias_ratio:5.2f} (target <= {MAX_BIAS_FRACTION:.2f}: "
            f"{'met' if result[f'bias_target_met_{name}'] else 'not met'})"
        )
    print(
        "templates at the test stars' own labels, rms difference from their spectra "
        f"(median over stars): raw {result['oracle_rms_raw_median']:.4f}, SOST "
        f"{result['oracle_rms_sost_median']:.4f}"
    )
    print(
        f"{result['n_test']} test stars, {result['n_train']} pool stars, "
        f"{result['n_templates']} cells; {result['runtime_minutes']:.1f} minutes"
    )


def formulation_keys(by_formulation: dict[str, dict], raw: dict[str, dict]) -> dict[str, Any]:
    """Flat keys per formulation: bias, scatter and their ratios to the raw library's."""
    out: dict[str, Any] = {}
    for name, f in by_formulation.items():
        for label in LABEL_NAMES:
            s, r = f["table"][label], raw[label]
            out[f"bias_{label}_{name}"] = s["bias"]
            out[f"scatter_{label}_{name}"] = s["scatter"]
            out[f"scatter_ratio_{label}_{name}"] = s["scatter"] / r["scatter"]
            out[f"abs_bias_ratio_{label}_{name}"] = (
                abs(s["bias"]) / abs(r["bias"]) if r["bias"] else float("nan")
            )
        out[f"oracle_rms_sost_median_{name}"] = f["oracle"]["oracle_rms_sost_median"]
        out[f"train_minutes_{name}"] = f["minutes"]
    return out


def print_formulations(by_formulation: dict[str, dict], result: dict[str, Any]) -> None:
    if not by_formulation:
        return
    print("\nSOST formulations (scatter ratio to raw Kurucz, Teff / log g / [Fe/H]; bias):")
    for name in by_formulation:
        ratios = " / ".join(f"{result[f'scatter_ratio_{n}_{name}']:.2f}" for n in LABEL_NAMES)
        biases = ", ".join(
            f"{result[f'bias_{n}_{name}']:+.{0 if n == 'teff' else 2}f}" for n in LABEL_NAMES
        )
        rms = result[f"oracle_rms_sost_median_{name}"]
        print(f"  {name:<13} {ratios}   bias {biases}   templates at own labels rms {rms:.4f}")


def flat_result(
    tables: dict[str, dict], matched: dict[str, dict], config, numbers: dict[str, Any]
) -> dict[str, Any]:
    """The flat JSON record: statistics per library and label, ratios, choices."""
    result: dict[str, Any] = {}
    for key, title in LIBRARIES.items():
        for name in LABEL_NAMES:
            s = tables[title][name]
            result[f"{key}_{name}_bias"] = s["bias"]
            result[f"{key}_{name}_scatter"] = s["scatter"]
            result[f"{key}_{name}_robust_sigma"] = s["robust_sigma"]
            result[f"{key}_{name}_n"] = s["n"]
        flags = np.asarray(matched[title].get("flags", []))
        result[f"{key}_n_flagged"] = int(np.count_nonzero(flags))
    for name in LABEL_NAMES:
        raw, sost = tables[LIBRARIES["raw"]][name], tables[LIBRARIES["sost"]][name]
        ratio = sost["scatter"] / raw["scatter"]
        bias_ratio = abs(sost["bias"]) / abs(raw["bias"]) if raw["bias"] else float("nan")
        result[f"scatter_ratio_{name}"] = ratio
        result[f"target_scatter_ratio_{name}"] = 1 - PAPER_SCATTER_REDUCTION[name]
        result[f"scatter_target_met_{name}"] = bool(ratio <= 1 - PAPER_SCATTER_REDUCTION[name])
        result[f"abs_bias_ratio_{name}"] = bias_ratio
        result[f"bias_target_met_{name}"] = bool(bias_ratio <= MAX_BIAS_FRACTION)
        fit = tables[LIBRARIES["sost_fit"]][name]
        result[f"fit_scatter_ratio_{name}"] = (
            fit["scatter"] / tables[LIBRARIES["raw_fit"]][name]["scatter"]
        )
        result[f"fit_to_grid_scatter_ratio_{name}"] = fit["scatter"] / sost["scatter"]
    p, g, m, t = config.preprocess, config.library.grid, config.model, config.train
    result.update(
        {
            "grid_start": p.grid_start,
            "grid_stop": p.grid_stop,
            "grid_step": p.grid_step,
            "grid_medium": p.grid_medium,
            "degrade_fwhm": p.degrade_fwhm,
            "miles_input_fwhm": p.input_fwhm,
            "ck04_input_fwhm": config.miles.ck04_input_fwhm,
            "knot_spacing": p.normalise.knot_spacing,
            "match_weights": config.miles.match_weights,
            "cell_teff": g.teff_step,
            "cell_logg": g.logg_step,
            "cell_feh": g.feh_step,
            "cell_min_stars": g.min_stars,
            "teff_range": "{:g}..{:g}".format(*g.teff_range),
            "logg_range": "{:g}..{:g}".format(*g.logg_range),
            "feh_range": "{:g}..{:g}".format(*g.feh_range),
            "k": config.infer.k,
            "style_source": config.library.style,
            "n_synthetic": config.miles.n_synthetic,
            "label_jitter": ", ".join(f"{v:g}" for v in config.miles.label_jitter),
            "model_dim": m.dim,
            "model_n_res": m.n_res,
            "model_n_down": m.n_down,
            "model_down_stride": m.down_stride,
            "model_style_dim": m.style_dim,
            "model_mlp_dim": m.mlp_dim,
            "dis_dim": config.dis.dim,
            "train_steps": t.steps,
            "train_batch_size": t.batch_size,
            "train_lr": t.lr,
            "emulator_hidden": "x".join(str(h) for h in config.emulator.hidden),
            **numbers,
        }
    )
    return result


# --------------------------------------------------------------------------- main


#: Where a formulation's objective and network live: these keys are read from its config
#: file and set on the benchmark's config; its scale (width, steps, batch, learning rate),
#: data and S/N cuts (MILES has no error spectra) stay the benchmark's.
METHOD_KEYS = (
    "model.arch",
    "model.init",
    "model.pad_mode",
    "model.translation",
    "dis.init",
    "dis.pad_mode",
    "dis.leaky_slope",
    "dis.downsample",
    "loss",
    "train.beta1",
    "train.beta2",
    "train.weight_decay",
    "train.dis_fakes",
    "library.match_weight",
)
#: name -> (config file whose METHOD_KEYS are taken, or None for the benchmark's own paired
#: config; fraction of the pool paired at its MILES labels; extra overrides).
FORMULATIONS: dict[str, tuple[str | None, float, list[str]]] = {
    "paired": (None, 1.0, []),
    "unpaired": ("configs/cpu_unpaired.py", 0.0, []),
    "reference": ("configs/reference.py", 0.0, []),
    "paper": ("configs/paper.py", 0.0, []),
    "subsetpaired": (None, 0.05, []),
    "semipaired": (None, 0.05, ["loss.mean_gap=10.0"]),
}


def formulation_config(config, name: str):
    """The benchmark's config with formulation ``name``'s objective and network."""
    source, _, extra = FORMULATIONS[name]
    out = copy.deepcopy(config)
    if source is not None:
        method = load_config(ROOT / source)
        for key in METHOD_KEYS:
            section, _, field = key.partition(".")
            if field:
                out[section][field] = method[section][field]
            else:
                out[section] = copy.deepcopy(method[section])
    apply_overrides(out, extra)
    return out


def pair_labels(pool: PreparedStore, fraction: float, seed: int) -> np.ndarray:
    """The pool's MILES labels on a random ``fraction`` of its stars, NaN on the others."""
    labels = np.asarray(pool.labels, np.float32)
    if fraction >= 1:
        return labels
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), bool)
    keep[rng.choice(len(labels), size=max(1, round(fraction * len(labels))), replace=False)] = 1
    return np.where(keep[:, None], labels, np.nan).astype(np.float32)


def run(
    config, work: Path, dev: bool, t0: float, formulations: list[str] | None = None
) -> dict[str, Any]:
    """The whole protocol in ``work``; returns the tables, the matched pairs and numbers.

    ``formulations`` (names of FORMULATIONS) each train their own SOST on the same prepared
    stars, emulator and synthetic domain; default the config's own formulation alone. The
    first one's SOST library is the "sost" row of the tables; every one's table is in
    ``by_formulation``.
    """
    weights = config.miles.match_weights
    if weights not in ("uniform", "store"):
        raise ValueError(f"miles.match_weights must be uniform or store, not {weights!r}")
    split = miles_split(config, dev)
    pool, _ = prepare_miles(split["pool_paths"], split["labels"], work / "pool", config, False)
    _, test = prepare_miles(
        split["test_paths"], split["labels"], work / "test", config, weights == "uniform"
    )
    log(
        t0,
        f"MILES prepared: {len(pool)} pool and {len(test)} {'dev ' if dev else ''}test stars "
        f"({split['n_in_range']} of {split['n_catalogue']} catalogued stars in range), "
        f"{pool.n_pixels} pixels",
    )

    ck04 = prepare_ck04(config, work / "ck04")
    emulator, report = emulator_from_store(ck04.root, validate(config).emulator, progress=False)
    emulator_path = emulator.save(work / "emulator")
    log(
        t0,
        f"emulator on {len(ck04)} ck04 models: {report['epochs']} epochs, held-out median "
        f"|residual| {report['val_median_abs_residual']:.1e}, p95 "
        f"{report['val_p95_abs_residual']:.1e}",
    )

    pool_labels = np.asarray(pool.labels, np.float64)
    syn = synthetic_domain(emulator, pool_labels, config, work / "synthetic")
    data = pool.read(np.arange(len(pool)))
    libraries = {
        "empirical": Library(pool.wave, data["flux"], data["labels"], {"kind": "empirical"})
    }
    matched, by_formulation = {}, {}
    numbers: dict[str, Any] = {}
    for i, name in enumerate(formulations or [None]):
        f_config = config if name is None else formulation_config(config, name)
        f_work = work if name is None else work / name
        sost, trained, oracle, made, n_partners, _ = train_formulation(
            f_config, name, f_work, emulator, emulator_path, (pool, syn, test), t0
        )
        f_matched, _ = estimate(sost, test, f_work / "infer_sost", config)
        by_formulation[name] = {
            "table": summary_table(f_matched),
            "oracle": oracle,
            "steps_per_s": trained["steps_per_s"],
            "minutes": trained["minutes"],
        }
        if i > 0:
            continue
        libraries["raw"], libraries["sost"] = read_library(made["raw"]), sost
        matched[LIBRARIES["sost"]] = f_matched
        numbers.update(
            {
                "formulation": name or "config",
                "n_templates": made["n_templates"],
                "n_style_partners": n_partners,
                "translated_val_median_abs_residual": made.get(
                    "translated_val_median_abs_residual", float("nan")
                ),
                "sost_train_steps_per_s": trained["steps_per_s"],
                "sost_train_minutes": trained["minutes"],
                **{f"sost_{k}": v for k, v in trained.items() if k.startswith("val_")},
                **oracle,
            }
        )
    for key in ("raw", "empirical"):
        matched[LIBRARIES[key]], _ = estimate(libraries[key], test, work / f"infer_{key}", config)
    fit_config = copy.deepcopy(config)
    fit_config.infer.method = "fit"
    for key, grid_key in FITS.items():
        matched[LIBRARIES[key]], catalogue = estimate(
            libraries[grid_key], test, work / f"infer_{key}", fit_config
        )
        numbers[f"{key}_converged_fraction"] = float(np.mean(catalogue["converged"]))
        numbers[f"{key}_median_iterations"] = float(np.median(catalogue["n_iter"]))
    tables = {title: summary_table(matched[title]) for title in LIBRARIES.values()}
    log(t0, f"estimated {len(test)} test stars with each library")
    numbers.update(
        {
            "dev": dev,
            "n_test": len(test),
            "n_train": len(pool),
            "n_templates_empirical": len(pool),
            "n_ck04_models": len(ck04),
            "n_synthetic_store": len(syn),
            "n_pixels": pool.n_pixels,
            "translated_points_per_cell": config.library.translated_points_per_cell,
            "fit_continuum_degree": config.infer.fit.continuum_degree,
            "emulator_epochs": report["epochs"],
            "emulator_val_median_abs_residual": report["val_median_abs_residual"],
            "emulator_val_p95_abs_residual": report["val_p95_abs_residual"],
        }
    )
    return {
        "tables": tables,
        "matched": matched,
        "numbers": numbers,
        "by_formulation": by_formulation if formulations else {},
        "library_labels": libraries["raw"].labels,
        "pool_labels": pool_labels,
    }


class TrainedFormulation(NamedTuple):
    """One formulation's SOST and its libraries (`train_formulation`)."""

    library: Library  # the SOST library
    training: dict[str, Any]  # train_and_evaluate's summary
    oracle: dict[str, float]  # the templates' residuals at the test stars' own labels
    made: dict[str, Any]  # make_libraries' summary
    n_partners: int  # distinct style partners
    templates: dict  # the templates at the test stars' labels (`templates_at_labels`)


def train_formulation(
    config, name: str | None, work: Path, emulator, emulator_path: Path, stores, t0: float
) -> TrainedFormulation:
    """Train one formulation's SOST and build its libraries; ``stores`` are (pool,
    synthetic, test)."""
    pool, syn, test = stores
    train_config = copy.deepcopy(config)
    train_config.train.synthetic_store = str(syn.root)
    train_config.train.observed_store = str(pool.root)
    fraction = 1.0 if name is None else FORMULATIONS[name][1]
    if config.loss.paired > 0 and fraction > 0:  # partners: the emulator at MILES labels
        labels = pair_labels(pool, fraction, config.train.seed)
        pairs = paired_store(emulator, pool, work / "paired", labels=labels)
        train_config.train.paired_store = str(pairs.root)
    else:
        train_config.loss.paired = 0.0
    log(
        t0,
        f"training SOST{f' ({name})' if name else ''}: {len(syn)} synthetic, {len(pool)} "
        f"observed{f' ({fraction:.0%} paired)' if train_config.loss.paired else ''}, "
        f"{config.train.steps} steps",
    )
    trained = train_and_evaluate(train_config, work / "sost", progress=False)
    log(
        t0,
        f"SOST trained at {trained['steps_per_s']:.1f} steps/s; held-out |relative residual| "
        f"of reconstructions: synthetic {trained['val_recon_a']:.4f}, observed "
        f"{trained['val_recon_b']:.4f}",
    )
    made = make_libraries(
        train_config,
        work / "libraries",
        pool.root,
        emulator=emulator_path,
        run=work / "sost",
        observed=pool.root,
        progress=False,
    )
    sost = read_library(made["sost"])
    n_partners = len(np.unique(sost.columns["partner"]))
    log(t0, f"libraries: {made['n_templates']} cells ({n_partners} distinct style partners)")
    translator = translator_from_run(work / "sost", n_pixels=pool.n_pixels)
    templates = templates_at_labels(emulator, translator, pool, test)
    oracle = translation_residuals(templates)
    return TrainedFormulation(sost, trained, oracle, made, n_partners, templates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "miles_ck04.py")
    parser.add_argument("--dev", action="store_true", help="stand-in test stars from the pool")
    parser.add_argument("--workdir", type=Path, help="keep the intermediate products here")
    parser.add_argument(
        "--select-knots", type=float, nargs="+", metavar="Å", help="compare knot spacings"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--formulations",
        default="",
        help=f"comma-separated, from {', '.join(FORMULATIONS)}; the first fills the main keys",
    )
    parser.add_argument("override", nargs="*", help="config overrides key.path=value")
    args = parser.parse_args()
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} before starting; other work slows this run")
    config = load_config(args.config, args.override)
    formulations = [n for n in args.formulations.split(",") if n]
    unknown = sorted(set(formulations) - set(FORMULATIONS))
    if unknown:
        raise SystemExit(f"unknown formulations {unknown}; known: {', '.join(FORMULATIONS)}")
    if not (DATA / "miles").is_dir() or not (DATA / "ck04").is_dir():
        raise SystemExit(f"{DATA} lacks miles/ or ck04/: nothing to benchmark")
    if args.select_knots:
        select_knots(config, args.select_knots, t0)
        return
    if args.workdir is not None:
        if args.workdir.exists():
            raise SystemExit(f"{args.workdir} exists; give a new folder")
        out = run(config, args.workdir, args.dev, t0, formulations)
    else:
        with tempfile.TemporaryDirectory(prefix="sost-miles-ck04-") as work:
            out = run(config, Path(work), args.dev, t0, formulations)
    tables, matched = out["tables"], out["matched"]
    result = flat_result(tables, matched, config, out["numbers"])
    result.update(formulation_keys(out["by_formulation"], tables[LIBRARIES["raw"]]))
    result["runtime_minutes"] = (time.perf_counter() - t0) / 60
    result["load_average_at_start"] = load
    result["cpu_count"] = os.cpu_count()
    print()
    print(format_table(tables))
    print_comparison(tables, result)
    print_formulations(out["by_formulation"], result)
    figures_dir, out_path = FIGURES, args.out
    if args.dev:  # the stand-in results never go to benchmarks/results
        if args.workdir is None:
            log(t0, "dev run: nothing written (give --workdir to keep its figures and JSON)")
            return
        figures_dir, out_path = args.workdir / "figures", args.workdir / "miles_ck04_dev.json"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = plot_estimates_vs_reference(
        matched,
        figures_dir / "estimates_vs_reference.png",
        title=f"{result['n_test']} MILES {'dev ' if args.dev else ''}test stars: ck04 "
        "templates raw and through SOST, and the training pool's spectra",
    )
    figures += plot_library_coverage(
        out["library_labels"],
        out["pool_labels"],
        figures_dir / "library_coverage.png",
        f"{result['n_templates']} library cells over the {result['n_train']} pool stars",
    )
    g = config.library.grid
    write_report(
        figures_dir / "report.md",
        tables,
        figures,
        title="MILES test stars from ck04 templates: raw, SOST-translated, empirical",
        notes=[
            f"{result['n_test']} MILES test stars (MILES number divisible by 5) against "
            f"{result['n_templates']} raw and SOST templates (cells of {g.teff_step:g} K x "
            f"{g.logg_step:g} dex x {g.feh_step:g} dex holding at least {g.min_stars} of the "
            f"{result['n_train']} pool stars) and the pool's own spectra; two-best chi2 rule.",
            "Made by benchmarks/miles_ck04.py with configs/miles_ck04.py; numbers in "
            "benchmarks/results/miles_ck04.json.",
        ],
    )
    result["runtime_minutes"] = (time.perf_counter() - t0) / 60
    write_result(out_path, result, t0)


if __name__ == "__main__":
    main()
