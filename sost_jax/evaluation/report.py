"""Catalogues against a reference: tables, the paper's figures 11, 13 and 14, a report.

`evaluate_catalogues` is what ``sost-jax evaluate`` runs: each catalogue (one per library,
e.g. raw synthetic and SOST) is cross-matched with the reference catalogue
(`sost_jax.evaluation.metrics.crossmatch`, by id or by sky position), the bias and scatter of every
label are tabulated (all matched stars, and clean ones: flags 0), and the figures and a
Markdown report are written into one folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.data.io import read_reference_catalog
from sost_jax.errors import InputError
from sost_jax.evaluation.figures import (
    plot_bias_plane,
    plot_differences_vs_snr,
    plot_estimates_vs_reference,
)
from sost_jax.evaluation.metrics import (
    binned_stats,
    crossmatch,
    format_table,
    summary_table,
    write_report,
)


def _table(source: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    """A catalogue or reference given as columns, a catalogue file, or a CSV/FITS table."""
    if isinstance(source, Mapping):
        return source

    return read_reference_catalog(source)


def flat_summary(tables: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
    """``{library}_{label}_{bias|scatter|robust_sigma|n}`` from `summary_table` results."""
    out: dict[str, float] = {}
    for lib, table in tables.items():
        for name in LABEL_NAMES:
            for stat in ("n", "bias", "scatter", "robust_sigma"):
                value = table[name][stat]
                out[f"{lib}_{name}_{stat}"] = int(value) if stat == "n" else float(value)
    return out


def evaluate_catalogues(
    catalogues: Mapping[str, str | os.PathLike | Mapping[str, Any]],
    reference: str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    by: str = "auto",
    radius_arcsec: float = 3.0,
    title: str = "SOST evaluation",
    notes: list[str] | None = None,
    bias_plane: str | None = None,
    extra_figures: Mapping[str, str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Compare catalogues of estimates with a reference catalogue.

    Parameters
    ----------
    catalogues : dict name -> catalogue
        Columns or files (FITS/CSV written by `sost_jax.inference.catalogue`, or any table with
        id and/or ra, dec and teff, logg, feh), e.g. ``{"raw synthetic": ..., "SOST": ...}``.
    reference : columns or file
        Reference labels (id and/or ra, dec [deg]; teff [K], logg, feh [dex]).
    out_dir : path
        Receives ``figures/`` (PNG and PDF), ``report.md`` and ``evaluation.json``.
    by, radius_arcsec
        Cross-matching (`sost_jax.evaluation.metrics.crossmatch`).
    title, notes
        Of the report.
    bias_plane : str, optional
        The catalogue whose mean differences are drawn in the Teff-log g plane (Fig. 14);
        default the last one.
    extra_figures : dict caption -> path, optional
        Figures made elsewhere, shown in the report before these.

    Returns
    -------
    dict
        ``tables`` (name -> `summary_table`), ``clean_tables`` (flags 0 only), ``snr_bins``
        (name -> label -> `binned_stats`), ``flat`` (`flat_summary`), ``figures``,
        ``report``, ``matched`` (name -> `crossmatch` result).
    """
    if not catalogues:
        raise InputError("no catalogue to evaluate")
    out = Path(out_dir)
    ref = _table(reference)
    matched = {
        name: crossmatch(_table(cat), ref, by=by, radius_arcsec=radius_arcsec)
        for name, cat in catalogues.items()
    }
    tables = {name: summary_table(m) for name, m in matched.items()}
    clean = {
        name: summary_table(m, np.asarray(m["flags"]) == 0)
        for name, m in matched.items()
        if "flags" in m
    }
    snr_bins = {
        name: {
            label: binned_stats(m["snr"], m[f"est_{label}"] - m[f"ref_{label}"])
            for label in LABEL_NAMES
        }
        for name, m in matched.items()
        if "snr" in m
    }
    fig_dir = out / "figures"
    figures: dict[str, Path] = {k: Path(v) for k, v in (extra_figures or {}).items()}
    paths = plot_estimates_vs_reference(matched, fig_dir / "estimates_vs_reference")
    figures["Estimated against reference labels (Fig. 11)"] = paths[0]
    if snr_bins:
        rows = {name: matched[name] for name in snr_bins}
        paths = plot_differences_vs_snr(rows, fig_dir / "differences_vs_snr", log_snr=True)
        figures["Differences against S/N (Fig. 13)"] = paths[0]
    plane = bias_plane if bias_plane is not None else list(matched)[-1]
    if plane not in matched:
        raise InputError(f"bias_plane {plane!r} is not one of {list(matched)}")
    paths = plot_bias_plane(
        matched[plane],
        fig_dir / "bias_plane",
        title=f"{plane}: mean est − ref in the Teff-log g plane (Fig. 14)",
    )
    figures[f"{plane}: mean differences in the Teff-log g plane (Fig. 14)"] = paths[0]
    texts = list(notes or [])
    if clean:
        texts.append("Clean estimates only (flags 0):\n\n```\n" + format_table(clean) + "\n```")
    report = write_report(out / "report.md", tables, figures, title=title, notes=texts)
    flat = flat_summary(tables)
    record = {
        "tables": tables,
        "clean_tables": clean,
        "snr_bins": snr_bins,
        "flat": flat,
        "n_matched": {name: int(len(m[f"est_{LABEL_NAMES[0]}"])) for name, m in matched.items()},
    }
    (out / "evaluation.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    return {
        **record,
        "figures": [str(p) for p in figures.values()],
        "report": str(report),
        "matched": matched,
    }
