"""Calibrated uncertainties: formal fit errors scaled and floored to match reference labels.

A fit's formal error (the covariance at the optimum) counts only the photon noise the
spectrum states. The model's own mismatch (an imperfect emulator or translation, stellar
properties the three labels do not describe) adds an error that does not shrink with S/N,
so at high S/N formal errors are far too small. The calibration is the usual two-parameter
error model, per label,

    err^2 = (scale * formal_err)^2 + floor^2,

fitted by maximum likelihood to stars with reference labels (a development set, never the
test stars): ``est - ref ~ N(0, err^2 + ref_err^2)``, with a ``clip``-sigma rejection of
catastrophic outliers (two passes). The maximum is found on a grid of (scale, floor), refined
twice around the best point; a label's likelihood is separable, so each label is one 2-D search.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError

MIN_STARS = 20
"""Fewest stars with finite estimate, error and reference a label's calibration accepts."""


@dataclass(frozen=True)
class ErrorCalibration:
    """Per-label error model ``err^2 = (scale * formal)^2 + floor^2``.

    Attributes
    ----------
    scale : (float, float, float)
        Multipliers of the formal errors of Teff, log g, [Fe/H].
    floor : (float, float, float)
        Errors added in quadrature [K, dex, dex].
    n_stars : (int, int, int)
        Stars each label's calibration was fitted on (after clipping).
    source : str
        What it was fitted on (free text, recorded for provenance).
    """

    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    floor: tuple[float, float, float] = (0.0, 0.0, 0.0)
    n_stars: tuple[int, int, int] = (0, 0, 0)
    source: str = "none"

    def apply(self, formal: np.ndarray) -> np.ndarray:
        """Calibrated errors [N, 3] from formal errors [N, 3] (K, dex, dex)."""
        formal = np.asarray(formal, np.float64)
        scale, floor = np.asarray(self.scale), np.asarray(self.floor)
        return np.sqrt((scale[None, :] * formal) ** 2 + floor[None, :] ** 2)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorCalibration:
        try:
            scale, floor = tuple(float(v) for v in d["scale"]), tuple(float(v) for v in d["floor"])
            n_stars = tuple(int(v) for v in d.get("n_stars", (0, 0, 0)))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"not an error calibration: {err!r}") from None
        if not len(scale) == len(floor) == len(n_stars) == 3:
            raise InputError("not an error calibration: scale and floor need 3 values each")
        return cls(scale, floor, n_stars, str(d.get("source", "")))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ErrorCalibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"error calibration {path} does not exist")
        return cls.from_dict(json.loads(path.read_text()))


def _neg_log_like(d2: np.ndarray, e2: np.ndarray, r2: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Summed -2 ln L (up to a constant) on the grid a [A] x b [B] -> [A, B]."""
    v = a[:, None, None] ** 2 * e2[None, None, :] + b[None, :, None] ** 2 + r2[None, None, :]
    return (np.log(v) + d2[None, None, :] / v).sum(axis=2)


def _fit_label(diff: np.ndarray, formal: np.ndarray, ref_err: np.ndarray) -> tuple[float, float]:
    d2, e2, r2 = diff**2, formal**2, ref_err**2
    a = np.geomspace(0.1, 100.0, 61)
    b = np.linspace(0.0, 3.0 * np.sqrt(np.mean(d2)), 61)
    for _ in range(3):  # the grid, then two refinements around its best point
        nll = _neg_log_like(d2, e2, r2, a, b)
        i, j = np.unravel_index(np.argmin(nll), nll.shape)
        a_lo, a_hi = a[max(i - 1, 0)], a[min(i + 1, a.size - 1)]
        b_lo, b_hi = b[max(j - 1, 0)], b[min(j + 1, b.size - 1)]
        best = float(a[i]), float(b[j])
        a, b = np.geomspace(max(a_lo, 1e-6), a_hi, 41), np.linspace(b_lo, b_hi, 41)
    return best


def fit_error_calibration(
    estimates: np.ndarray,
    formal_err: np.ndarray,
    reference: np.ndarray,
    reference_err: np.ndarray | None = None,
    *,
    clip: float = 5.0,
    source: str = "",
) -> ErrorCalibration:
    """Maximum-likelihood ``scale`` and ``floor`` of each label.

    Parameters
    ----------
    estimates, formal_err, reference : [N, 3]
        Fitted labels, their formal errors and reference labels (K, dex, dex). Rows with a
        non-finite value in a label are left out of that label's fit.
    reference_err : [N, 3] or [3], optional
        Errors of the reference labels (default 0: exact references, e.g. a mock's truth).
    clip : float
        Stars further than this many (calibrated) sigma are left out, and the fit repeated.
    source : str
        Recorded in the result.
    """
    est = np.asarray(estimates, np.float64)
    err = np.asarray(formal_err, np.float64)
    ref = np.asarray(reference, np.float64)
    if est.ndim != 2 or est.shape[1] != 3 or err.shape != est.shape or ref.shape != est.shape:
        raise InputError(
            f"estimates, errors and references must all be [N, 3]; got {est.shape}, "
            f"{err.shape}, {ref.shape}"
        )
    ref_err = np.zeros_like(est) if reference_err is None else np.asarray(reference_err, float)
    ref_err = np.broadcast_to(ref_err, est.shape)
    scale, floor, counts = [], [], []
    for i, name in enumerate(LABEL_NAMES):
        diff, e, r = est[:, i] - ref[:, i], err[:, i], ref_err[:, i]
        keep = np.isfinite(diff) & np.isfinite(e) & (e > 0) & np.isfinite(r)
        if keep.sum() < MIN_STARS:
            raise InputError(
                f"{name}: {int(keep.sum())} stars with a finite estimate, error and reference; "
                f"an error calibration needs {MIN_STARS}"
            )
        a, b = _fit_label(diff[keep], e[keep], r[keep])
        for _ in range(2):
            sigma = np.sqrt((a * e) ** 2 + b**2 + r**2)
            inlier = keep & (np.abs(diff) < clip * sigma)
            a, b = _fit_label(diff[inlier], e[inlier], r[inlier])
        scale.append(a)
        floor.append(b)
        counts.append(int(inlier.sum()))
    return ErrorCalibration(tuple(scale), tuple(floor), tuple(counts), source)
