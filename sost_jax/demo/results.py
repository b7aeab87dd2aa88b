"""The demo's results: the one-line account of how SOST was trained, and the flat dict of
numbers (``demo.json``) that benchmarks and the README read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sost_jax.constants import LABEL_NAMES
from sost_jax.evaluation.metrics import gap_closed
from sost_jax.sost.pairing import LabelErrors


def formulation(settings: Any) -> str:
    """One line on how SOST was trained (for the report), from a run's settings."""
    loss, demo, model = settings.loss, settings.demo, settings.model
    weights = f"GAN {loss.gan:g}, id {loss.recon_x:g}, content {loss.recon_c:g}, style "
    weights += f"{loss.recon_s:g}, cycle {loss.cycle:g}, paired {loss.paired:g}"
    weights += f", mean gap {loss.mean_gap:g}" if loss.mean_gap > 0 else ""
    kind = {
        "direct": "the paper's translation (decoder of the observed domain)",
        "change": "translation = synthetic spectrum + a position-aware change decoder",
    }[model.translation]
    extras = [f"{model.arch} geometry"]
    if loss.gan > 0 and loss.gan_measured:
        extras.append("discriminator sees translations with observed noise")
    if settings.train.min_snr > 0:
        extras.append(f"observed S/N >= {settings.train.min_snr:g}")
    pairs = ""
    if loss.paired > 0 and demo.pair_fraction < 1:
        noise = ", ".join(f"{v:g}" for v in demo.subset_label_noise)
        pairs = (
            f"; {100 * demo.pair_fraction:g}% of the observed stars paired at accurate labels "
            f"(errors {noise} K, dex, dex)"
        )
    elif loss.paired > 0:
        noise = ", ".join(f"{v:g}" for v in demo.label_noise)
        errors = demo.label_errors
        # any systematic part set (the pivot alone changes nothing)
        biased = errors != LabelErrors(noise=errors.noise, logg_pivot=errors.logg_pivot)
        shown = ", ".join(f"{k} {v:g}" for k, v in demo.label_bias.to_dict().items())
        pairs = f"; partners at labels with errors ({noise}) K, dex, dex"
        pairs += f" and bias ({shown})" if biased else ""
    steps = settings.train.steps
    return f"{kind}; {', '.join(extras)}; loss weights {weights}{pairs}; {steps} steps"


def last_validation(run: Path) -> dict[str, float]:
    """The last validation record of a run's metrics.jsonl (a resumed, finished run does not
    validate again)."""
    last: dict[str, float] = {}
    path = run / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if any(k.startswith("val_") for k in record):
                last = record
    return last


def gaps_closed(tables: dict[str, Any]) -> dict[str, float]:
    """The fraction of the raw -> oracle scatter gap SOST closes, per label."""
    return {
        name: gap_closed(
            tables["raw"][name]["scatter"],
            tables["sost"][name]["scatter"],
            tables["oracle"][name]["scatter"],
        )
        for name in LABEL_NAMES
    }


def flat_results(
    settings: Any,
    gaps: dict[str, float],
    evaluation: dict[str, Any],
    to_oracle: dict[str, float],
    counts: dict[str, int],
    training: dict[str, Any],
    emulator_report: dict[str, Any],
    run: Path,
    minutes: float,
) -> dict[str, Any]:
    """``demo.json``: the gaps closed, the evaluation's flat numbers (``evaluation["flat"]``),
    the libraries' distance to the oracle, the sizes (``counts``: n_test, n_templates,
    n_paired), the training's and the emulator's validation."""
    demo = settings.demo
    flat: dict[str, Any] = {f"gap_closed_{name}": gaps[name] for name in LABEL_NAMES}
    flat["runtime_minutes"] = round(minutes, 2)
    flat["raw_mean_abs_diff_to_oracle"] = to_oracle["raw"]
    flat["sost_mean_abs_diff_to_oracle"] = to_oracle["sost"]
    flat.update(evaluation["flat"])
    flat.update(
        {
            "n_test": counts["n_test"],
            "n_templates": counts["n_templates"],
            "train_steps": int(training["step"]),
            "translation": str(settings.model.translation),
            "loss_paired": float(settings.loss.paired),
            "n_paired": counts["n_paired"],
            "label_noise": [float(v) for v in demo.label_noise],
            "label_bias": {k: float(v) for k, v in demo.label_bias.to_dict().items()},
            "pair_fraction": float(demo.pair_fraction),
            "train_minutes": round(float(training["minutes"]), 2),
            "emulator_val_median_abs_residual": emulator_report["val_median_abs_residual"],
            "emulator_val_p95_abs_residual": emulator_report["val_p95_abs_residual"],
        }
    )
    for key, value in {**last_validation(run), **training}.items():
        if key.startswith("val_"):
            flat[f"train_{key}"] = float(value)
    return flat
