"""Reports: tables of label differences, a Markdown page, the evaluation of catalogues.

`format_table` writes `sost_jax.evaluation.metrics.summary_table` results as aligned text
for a terminal, `write_report` as a Markdown page with the figures of a run.
`evaluate_catalogues` is what ``sost-jax evaluate`` runs: each catalogue (one per library,
e.g. raw synthetic and SOST) is cross-matched with the reference catalogue
(`sost_jax.evaluation.crossmatch.crossmatch`, by id or by sky position), the bias and
scatter of every label are tabulated (all matched stars, and clean ones: flags 0), and the
paper's figures 11, 13 and 14 and a Markdown report are written into one folder.

Units: Teff [K], log g [dex], [Fe/H] [dex].
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.data.io import read_reference_catalog
from sost_jax.errors import InputError
from sost_jax.evaluation.crossmatch import crossmatch
from sost_jax.evaluation.figures.labels import (
    plot_bias_plane,
    plot_differences_vs_snr,
    plot_estimates_vs_reference,
)
from sost_jax.evaluation.metrics import LABEL_TITLES, LABEL_UNITS, binned_stats, summary_table

LABEL_DECIMALS: dict[str, int] = {"teff": 1, "logg": 3, "feh": 3}
"""Decimals printed for the statistics of each label (Teff in K, the others in dex)."""

_STAT_KEYS = ("n", "bias", "scatter", "robust_sigma")
_STAT_TITLES = ("n", "bias", "scatter", "robust sigma")


# --------------------------------------------------------------------------- tables


def _format_value(value: float | int, decimals: int) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "nan"
    return f"{value:.{decimals}f}"


def _table_rows(
    tables: Mapping[str, Mapping[str, Mapping[str, float | int]]],
) -> list[list[str]]:
    """[library, parameter [unit], n, bias, scatter, robust sigma] as strings."""
    rows = []
    for library, table in tables.items():
        for name, stats in table.items():
            title = LABEL_TITLES.get(name, name)
            unit = LABEL_UNITS.get(name)
            decimals = LABEL_DECIMALS.get(name, 3)
            cells = [str(library), f"{title} [{unit}]" if unit else title]
            for key in _STAT_KEYS:
                value = stats.get(key, float("nan"))
                cells.append(_format_value(value if key != "n" else int(value), decimals))
            rows.append(cells)
    return rows


def format_table(tables: Mapping[str, Mapping[str, Mapping[str, float | int]]]) -> str:
    """Summary tables as aligned plain text, for a terminal.

    Parameters
    ----------
    tables : dict library -> `summary_table` result
        E.g. ``{"raw synthetic": ..., "SOST": ..., "oracle": ...}``.

    Returns
    -------
    str
        One line per library and parameter: library, parameter with unit, n, bias, scatter,
        robust sigma (Teff in K, log g and [Fe/H] in dex); no trailing newline.
    """
    header = ["library", "parameter", *_STAT_TITLES]
    rows = [header, *_table_rows(tables)]
    widths = [max(len(row[j]) for row in rows) for j in range(len(header))]

    def line(row: list[str]) -> str:
        left = [row[j].ljust(widths[j]) for j in range(2)]
        right = [row[j].rjust(widths[j]) for j in range(2, len(row))]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows[1:])])


def write_report(
    path: str | os.PathLike,
    tables: Mapping[str, Mapping[str, Mapping[str, float | int]]],
    figures: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike] = (),
    title: str = "SOST evaluation",
    notes: str | Sequence[str] | None = None,
) -> Path:
    """Write a Markdown report: a table of label differences, then the figures.

    Parameters
    ----------
    path : path
        The Markdown file (e.g. ``report.md``); its folder is created.
    tables : dict library -> `summary_table` result
        Written as one table with a library column: n, bias, scatter and robust sigma of
        est - ref per parameter, Teff in K, log g and [Fe/H] in dex.
    figures : list of paths, or dict caption -> path
        Images, linked relative to the report's folder. PNG (and JPEG, SVG) files are
        embedded; other files (e.g. the PDF twins of the PNGs) are listed as plain links
        unless a PNG of the same name is also given, then they are skipped.
    title : str
        The page's heading.
    notes : str or list of str, optional
        Paragraphs written under the title (e.g. the run and the reference catalogue).

    Returns
    -------
    Path of the report.
    """
    path = Path(path)
    base = path.parent
    lines = [f"# {title}", ""]
    if notes:
        for paragraph in [notes] if isinstance(notes, str) else notes:
            lines += [str(paragraph), ""]

    lines += ["## Estimated minus reference labels", ""]
    lines += [
        "Differences est - ref of the matched stars: bias (mean), scatter (standard "
        "deviation) and robust sigma (1.4826 x median absolute deviation). Teff in K, "
        "log g and [Fe/H] in dex.",
        "",
    ]
    rows = _table_rows(tables)
    if rows:
        header = ["library", "parameter", *_STAT_TITLES]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join([":--", ":--"] + ["--:"] * len(_STAT_TITLES)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        lines.append("(no matched stars)")
    lines.append("")

    items = list(figures.items()) if isinstance(figures, Mapping) else [(None, f) for f in figures]
    if items:
        lines += ["## Figures", ""]
        images = {".png", ".jpg", ".jpeg", ".svg"}
        given = {Path(f).with_suffix("") for _, f in items if Path(f).suffix.lower() in images}
        for caption, figure in items:
            figure = Path(figure)
            is_image = figure.suffix.lower() in images
            if not is_image and figure.with_suffix("") in given:
                continue
            link = Path(os.path.relpath(figure.resolve(), base.resolve())).as_posix()
            caption = caption or figure.stem.replace("_", " ")
            lines += [f"![{caption}]({link})" if is_image else f"[{caption}]({link})", ""]

    base.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------- catalogues


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


def _evaluation_figures(
    matched: Mapping[str, Mapping[str, np.ndarray]],
    with_snr: list[str],
    fig_dir: Path,
    bias_plane: str | None,
    extra_figures: Mapping[str, str | os.PathLike] | None,
) -> dict[str, Path]:
    """Draw Figs. 11, 13 (the catalogues ``with_snr``, when any) and 14 (``bias_plane``,
    default the last catalogue) of `crossmatch` results into ``fig_dir``; caption -> PNG,
    after ``extra_figures``."""
    figures: dict[str, Path] = {k: Path(v) for k, v in (extra_figures or {}).items()}
    paths = plot_estimates_vs_reference(matched, fig_dir / "estimates_vs_reference")
    figures["Estimated against reference labels (Fig. 11)"] = paths[0]
    if with_snr:
        rows = {name: matched[name] for name in with_snr}
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
    return figures


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
        Cross-matching (`sost_jax.evaluation.crossmatch.crossmatch`).
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
    figures = _evaluation_figures(
        matched, list(snr_bins), out / "figures", bias_plane, extra_figures
    )
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
