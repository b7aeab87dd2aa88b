"""The grid estimate: labels, uncertainties and flags from the k best templates of a match.

`sost_jax.inference.matching.match` keeps the ``k`` smallest chi2 of every target; `estimate`
turns them into Teff, log g and [Fe/H] by the paper's rule (the inverse-chi2 weighted mean of
the two best templates' labels), an uncertainty from the likelihood-weighted spread of the k
best, and the quality bits of `sost_jax.inference.flags.MatchFlag`. `label_grid` gives the
range and grid step of a library's labels, against which the edge flag and the grid's
discreteness are measured.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sost_jax.constants import LABEL_NAMES
from sost_jax.inference.flags import MatchFlag

Array = jax.Array


def label_grid(template_labels: Array) -> tuple[Array, Array, Array]:
    """Range and grid step of each label of a library.

    Parameters
    ----------
    template_labels : [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of the templates.

    Returns
    -------
    low, high, step : float32 [3]
        Smallest and largest value, and the smallest positive difference between sorted
        values (differences below 1e-6 of the range count as equal); ``step`` is inf for a
        label the library does not vary.
    """
    ordered = jnp.sort(jnp.asarray(template_labels, jnp.float32), axis=0)
    low, high = ordered[0], ordered[-1]
    gaps = jnp.diff(ordered, axis=0)
    tol = 1e-6 * (high - low)
    step = jnp.min(jnp.where(gaps > tol[None, :], gaps, jnp.inf), axis=0, initial=jnp.inf)
    return low, high, step


def _two_best_labels(top_chi2: Array, top_labels: Array) -> Array:
    """The paper's rule: labels [N, 3] of the two best templates weighted by inverse chi2.

    Parameters
    ----------
    top_chi2 : float32 [N, k]
        Ascending chi2 of the k best templates, >= 0.
    top_labels : float32 [N, k, 3]
        Their Teff [K], log g [dex], [Fe/H] [dex].

    Returns
    -------
    float32 [N, 3]
        ``(chi2_2 L1 + chi2_1 L2) / (chi2_1 + chi2_2)`` (the mean of L1 and L2 when both
        chi2 are 0); with ``k = 1`` the best template's labels.
    """
    if top_chi2.shape[1] < 2:
        return top_labels[:, 0]
    c1, c2 = top_chi2[:, :1], top_chi2[:, 1:2]
    total = c1 + c2
    w1 = jnp.where(total > 0, c2 / jnp.where(total > 0, total, 1.0), 0.5)
    point = w1[:, :, None] * top_labels[:, :1] + (1.0 - w1)[:, :, None] * top_labels[:, 1:2]
    return point[:, 0]


def _reduced_chi2(chi2_best: Array, dof: Array) -> Array:
    """chi2_best / dof [N], NaN where ``dof = n_good - 3`` [N] is not positive."""
    return jnp.where(dof > 0, chi2_best / jnp.maximum(dof, 1).astype(jnp.float32), jnp.nan)


def _label_variance(
    top_chi2: Array, top_labels: Array, chi2_best: Array, reduced: Array, dof: Array
) -> Array:
    """Variance [N, 3] of the k best templates' labels [N, k, 3] about their mean, weighted
    by the likelihoods ``exp(-(chi2_i - chi2_1) / (2 s))`` with ``s = max(reduced, 1)`` (or
    ``max(chi2_1, 1)`` where ``dof`` <= 0); see `estimate`."""
    temperature = jnp.maximum(jnp.where(dof > 0, reduced, chi2_best), 1.0)
    like = jnp.exp(-(top_chi2 - chi2_best[:, None]) / (2.0 * temperature[:, None]))
    like = (like / like.sum(axis=1, keepdims=True))[:, :, None]  # [N, k, 1]
    mean = (like * top_labels).sum(axis=1, keepdims=True)
    return (like * (top_labels - mean) ** 2).sum(axis=1)  # [N, 3]


def _label_uncertainty(variance: Array, step: Array) -> Array:
    """Standard deviation [N, 3]: ``variance`` [N, 3] plus, in quadrature, the grid's
    discreteness ``step / sqrt(12)`` (``step`` [3]; nothing for an infinite step)."""
    floor = jnp.where(jnp.isfinite(step), step, 0.0) / jnp.sqrt(12.0)
    return jnp.sqrt(variance + floor[None, :] ** 2)


def _on_library_edge(best: Array, low: Array, high: Array, step: Array, edge_steps: float) -> Array:
    """bool [N]: a label of the best template [N, 3] is less than ``edge_steps`` grid steps
    from its lowest or highest library value (``low``, ``high``, ``step`` [3]); labels with
    an infinite step (not varied by the library) never count."""
    margin = (edge_steps * step)[None, :]
    finite = jnp.isfinite(step)[None, :]
    return (finite & ((best - low[None, :] < margin) | (high[None, :] - best < margin))).any(axis=1)


def _match_flags(
    on_edge: Array,
    reduced: Array,
    n_good: Array,
    no_data: Array,
    n_pixels: int,
    poor_fit: float,
    min_fraction: float,
) -> Array:
    """int32 [N] `MatchFlag` bits from the edge test, the reduced chi2 and the pixels with
    data (all [N]); see `estimate` for the thresholds."""
    few = n_good.astype(jnp.float32) < min_fraction * n_pixels
    flags = jnp.zeros(n_good.shape, jnp.int32)
    for bit, condition in (
        (MatchFlag.EDGE, on_edge & ~no_data),
        (MatchFlag.POOR_FIT, reduced > poor_fit),
        (MatchFlag.FEW_PIXELS, few),
        (MatchFlag.NO_DATA, no_data),
    ):
        flags = flags | jnp.where(condition, jnp.int32(bit.value), jnp.int32(0))
    return flags


def _estimate_columns(
    point: Array,
    spread: Array,
    chi2_best: Array,
    reduced: Array,
    top_index: Array,
    no_data: Array,
    flags: Array,
) -> dict[str, Array]:
    """`estimate`'s columns from its [N] and [N, 3] arrays and the best templates' rows
    ``top_index`` [N, k]; everything but ``flags`` NaN (``best_index`` -1) where ``no_data``."""

    def blank(x: Array) -> Array:
        mask = no_data if x.ndim == 1 else no_data[:, None]
        return jnp.where(mask, jnp.nan, x)

    point, spread = blank(point), blank(spread)
    out = {name: point[:, i] for i, name in enumerate(LABEL_NAMES)}
    out.update({f"{name}_err": spread[:, i] for i, name in enumerate(LABEL_NAMES)})
    out["chi2_best"] = blank(chi2_best)
    out["chi2_reduced"] = blank(reduced)
    out["best_index"] = jnp.where(no_data, -1, top_index[:, 0]).astype(jnp.int32)
    out["flags"] = flags
    return out


@partial(
    jax.jit,
    static_argnames=("n_pixels", "poor_fit", "min_fraction", "edge_steps", "label_steps"),
)
def estimate(
    top_chi2: Array,
    top_index: Array,
    template_labels: Array,
    n_good: Array,
    n_pixels: int,
    *,
    poor_fit: float = 3.0,
    min_fraction: float = 0.5,
    edge_steps: float = 1.0,
    label_steps: tuple[float, float, float] | None = None,
) -> dict[str, Array]:
    """Labels, uncertainties, fit quality and flags from the k best templates.

    Labels (the paper's rule): the mean of the two best templates' labels weighted by their
    inverse chi2, ``L = (L1 / chi2_1 + L2 / chi2_2) / (1 / chi2_1 + 1 / chi2_2)``, computed as
    ``(chi2_2 L1 + chi2_1 L2) / (chi2_1 + chi2_2)`` so that a perfect match (chi2_1 = 0) gives
    L1; with ``k = 1`` the best template's labels.

    Uncertainty: the weighted standard deviation of the labels of the k best templates about
    their weighted mean, with likelihood weights ``exp(-(chi2_i - chi2_1) / (2 s))``, where
    ``s = max(chi2_1 / (n_good - 3), 1)`` is the best template's reduced chi2. Under Gaussian
    noise with the stated inverse variance these weights are the relative likelihoods of the
    templates, and the spread is the posterior width over the library. Real spectra are never
    matched to chi2_nu = 1, and with chi2 ~ 10^4 the raw likelihood would put all weight on
    one template (an uncertainty of 0); dividing by ``s`` inflates the noise until the best
    fit is acceptable, the usual rescaling of errors by the reduced chi2. (Inverse-chi2
    weights, the other option, are nearly equal for all k templates whatever the data
    quality, so they measure k and the grid step rather than the data.) The spread is
    limited by the grid: it is 0 when one template dominates, and cannot exceed what the k
    best templates span, so choose k to cover a few grid steps in each label. The library's
    discreteness is added in quadrature, ``step / sqrt(12)`` per label (the standard
    deviation of a uniform error over one grid step), so that a single dominant template
    does not give an uncertainty of 0.

    Parameters
    ----------
    top_chi2 : float [N, k]
        Ascending chi2 of the k best templates (`sost_jax.inference.matching.match`).
    top_index : int [N, k]
        Their rows in ``template_labels``.
    template_labels : float [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of every template.
    n_good : int [N]
        Pixels with positive weight of each target.
    n_pixels : int
        Pixels per spectrum, P.
    poor_fit : float
        POOR_FIT when the best reduced chi2 exceeds this.
    min_fraction : float
        FEW_PIXELS when ``n_good < min_fraction * n_pixels``.
    edge_steps : float
        EDGE when the best template is less than this many grid steps from a label's
        lowest or highest library value; 1 flags the faces of a regular grid.
    label_steps : (float, float, float), optional
        Grid step of each label [K, dex, dex]; default `label_grid`'s, which is right for a
        regular grid. Give the cell size for libraries drawn at random inside cells (the
        paper's), whose smallest label differences are far below a cell.

    Returns
    -------
    dict of [N] arrays
        ``teff`` [K], ``logg`` [dex], ``feh`` [dex] and ``teff_err``, ``logg_err``,
        ``feh_err`` (float32); ``chi2_best``, ``chi2_reduced`` = chi2_best / (n_good - 3)
        (NaN for n_good <= 3); ``best_index`` (int32, -1 without data); ``flags`` (int32,
        `MatchFlag` bits). Everything but flags is NaN for NO_DATA targets.
    """
    top_chi2 = jnp.maximum(jnp.asarray(top_chi2, jnp.float32), 0.0)
    labels = jnp.asarray(template_labels, jnp.float32)
    top_labels = labels[top_index]  # [N, k, 3]
    n_good = jnp.asarray(n_good, jnp.int32)
    chi2_best = top_chi2[:, 0]
    point = _two_best_labels(top_chi2, top_labels)

    dof = n_good - 3
    reduced = _reduced_chi2(chi2_best, dof)
    variance = _label_variance(top_chi2, top_labels, chi2_best, reduced, dof)

    low, high, step = label_grid(labels)
    if label_steps is not None:
        step = jnp.asarray(label_steps, jnp.float32)
    spread = _label_uncertainty(variance, step)
    on_edge = _on_library_edge(top_labels[:, 0], low, high, step, edge_steps)
    no_data = n_good == 0
    flags = _match_flags(on_edge, reduced, n_good, no_data, n_pixels, poor_fit, min_fraction)
    return _estimate_columns(point, spread, chi2_best, reduced, top_index, no_data, flags)
