"""The demo's reference labels: the catalogue that chooses the library's cells, and the
labels with survey-like errors that choose the observed training stars' partners."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.demo.settings import DemoSettings
from sost_jax.mock import MockSettings, sample_parameters
from sost_jax.runtime.files import replacing
from sost_jax.sost.pairing import LabelErrors


def write_reference(path: Path, mock: MockSettings, n: int, seed: int) -> Path:
    """A reference catalogue of ``n`` labels drawn from the mock population (CSV: id, teff,
    logg, feh), standing in for the stars with trusted labels that choose the library cells.
    An existing file is kept."""
    if path.exists():
        return path
    labels = sample_parameters(np.random.default_rng([seed, 7]), n, mock)
    with replacing(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *LABEL_NAMES])
        for i, row in enumerate(labels):
            writer.writerow([f"ref{i:07d}", f"{row[0]:.1f}", f"{row[1]:.4f}", f"{row[2]:.4f}"])
    return path


def reference_labels_for_pairs(truth: np.ndarray, demo: DemoSettings, seed: int) -> np.ndarray:
    """The reference labels [N, 3] that choose the observed training stars' partners.

    Real stars' reference labels carry errors: the true labels ``truth`` [N, 3] (Teff [K],
    log g [dex], [Fe/H] [dex]) get ``demo.label_bias`` and ``demo.label_noise``
    (`sost_jax.sost.pairing.LabelErrors`). With ``demo.pair_fraction`` < 1, a random subset
    of that fraction (a high-resolution overlap) has accurate labels instead (truth plus
    ``demo.subset_label_noise``) and every other star NaN labels, so no partner. ``seed`` is
    the mock survey's.
    """
    rng = np.random.default_rng([seed, 11])
    labels = demo.label_errors.apply(truth, rng)
    if demo.pair_fraction < 1:
        n = len(truth)
        subset = np.zeros(n, bool)
        subset[rng.choice(n, size=max(1, round(demo.pair_fraction * n)), replace=False)] = True
        accurate = LabelErrors(noise=tuple(demo.subset_label_noise)).apply(truth, rng)
        labels = np.where(subset[:, None], accurate, np.nan)
    return labels
