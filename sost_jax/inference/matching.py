"""Template matching: chi-square of survey spectra against a template library, and estimates.

Every target spectrum ``o`` (inverse variance ``w``, zero on masked pixels) is compared with
every template ``S`` of the library through

    chi2[n, t] = sum_p w[n, p] (o[n, p] - S[t, p])^2
               = sum_p w o^2  -  2 (w o) @ S^T  +  w @ (S^2)^T,

two float32 matrix products of [N, P] by [P, T], which are all the work. Before the products
the flux of targets and templates is taken relative to one per-pixel reference spectrum (the
mean template): the fixed-scale chi2 does not change, but the three terms become sums of
small residuals instead of sums of ~1 values, which removes most of the float32 cancellation
between them. With a free scale ``a`` per (target, template), ``chi2 = min_a sum w (o - a S)^2``
is obtained from the fixed-scale value as ``chi2(1) - ((w o - w S) . S)^2 / (w S^2)``, a
well-conditioned correction (one more matrix product).

The ``k`` smallest chi2 of each target are kept (`jax.lax.top_k`), and the labels estimated by
the paper's rule (`sost_jax.inference.grid_estimate.estimate`). `Matcher` runs both,
jit-compiled, with the targets split over a 1-D "data" mesh of all devices and the library
replicated; `sost_jax.inference.catalogue` streams spectra through it chunk by chunk, so only a
[chunk, T] block of chi2 is ever held.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as PS

from sost_jax.errors import InputError
from sost_jax.inference.grid_estimate import estimate
from sost_jax.runtime.devices import data_mesh
from sost_jax.runtime.memory import aligned_empty, is_aligned

Array = jax.Array
HIGHEST = jax.lax.Precision.HIGHEST


class TemplateBank(NamedTuple):
    """A template library ready for matching (a pytree: passes through `jax.jit`).

    Attributes
    ----------
    flux : float32 [T, P]
        Template flux minus ``offset``.
    flux_sq : float32 [T, P]
        ``flux ** 2``.
    offset : float32 [P]
        The per-pixel reference subtracted from templates and targets (the mean template).
    """

    flux: Array
    flux_sq: Array
    offset: Array


def make_bank(templates: Array | np.ndarray, offset: Array | np.ndarray | None = None):
    """Centre a template library on a reference spectrum and square it, once.

    Parameters
    ----------
    templates : [T, P]
        Template flux on the targets' wavelength grid (normalised, like the targets).
    offset : [P], optional
        Reference spectrum subtracted from templates and targets; default the mean template.

    Returns
    -------
    TemplateBank
    """
    templates = jnp.asarray(templates, jnp.float32)
    if templates.ndim != 2:
        raise InputError(f"templates must be [T, P], got shape {templates.shape}")
    if offset is None:
        offset = templates.mean(axis=0)
    offset = jnp.asarray(offset, jnp.float32)
    flux = templates - offset[None, :]
    return TemplateBank(flux, flux * flux, offset)


def chi2_matrix(
    obs: Array,
    weight: Array,
    templates: Array,
    templates_sq: Array | None = None,
    *,
    free_scale: bool = False,
    offset: Array | None = None,
    precision: jax.lax.Precision | None = HIGHEST,
    return_scale: bool = False,
) -> Array | tuple[Array, Array]:
    """Chi-square of every target against every template, in matrix form.

    ``chi2[n, t] = sum_p w[n, p] (o[n, p] - a[n, t] S[t, p])^2`` with ``a = 1``, or with the
    best scale ``a = (w o) . S / (w S^2)`` when ``free_scale``. Pixels with zero weight do not
    count (their flux is ignored, even if NaN).

    Parameters
    ----------
    obs : float32 [N, P]
        Target flux (normalised), minus ``offset`` when one is given.
    weight : float32 [N, P]
        Inverse variance of ``obs``; 0 (or NaN) on masked pixels.
    templates : float32 [T, P]
        Template flux, minus ``offset`` when one is given.
    templates_sq : float32 [T, P], optional
        ``templates ** 2`` precomputed (as in `TemplateBank`).
    free_scale : bool
        Fit one multiplicative scale per (target, template).
    offset : float32 [P], optional
        Per-pixel reference already subtracted from ``obs`` and ``templates``. The fixed-scale
        chi2 does not depend on it; the free-scale chi2 scales the uncentred template
        ``templates + offset``, which costs one more [N, P] x [P, T] product.
    precision : jax.lax.Precision
        Of the matrix products. HIGHEST keeps full float32 on accelerators (whose default may
        be TF32 or bfloat16, too coarse for the cancellation in the expansion); on CPU it is
        what one gets anyway.
    return_scale : bool
        Also return the scale ``a`` [N, T] (all ones without ``free_scale``).

    Returns
    -------
    chi2 : float32 [N, T]
        Clipped at 0 (round-off can make a near-perfect match slightly negative).
    scale : float32 [N, T]
        Only with ``return_scale``.
    """
    if obs.ndim != 2 or weight.shape != obs.shape or templates.shape[-1] != obs.shape[-1]:
        raise InputError(
            f"shapes disagree: obs {obs.shape}, weight {weight.shape}, templates "
            f"{templates.shape} (expected [N, P], [N, P], [T, P])"
        )
    dot = partial(jnp.matmul, precision=precision)
    w = jnp.where(weight > 0, weight, 0.0).astype(jnp.float32)
    o = jnp.where(w > 0, obs, 0.0).astype(jnp.float32)
    s = templates.astype(jnp.float32)
    s2 = s * s if templates_sq is None else templates_sq.astype(jnp.float32)
    wo = w * o
    cross = dot(wo, s.T)  # [N, T]  sum w o S
    wss = dot(w, s2.T)  # [N, T]  sum w S^2
    chi2 = (wo * o).sum(axis=-1)[:, None] - 2.0 * cross + wss
    scale = jnp.ones_like(chi2)
    if free_scale:
        # b = sum w S (o - S) and c = sum w S^2 of the uncentred template S = s + m.
        if offset is None:
            b, c = cross - wss, wss
        else:
            m = offset.astype(jnp.float32)[None, :]
            wm_s = dot(w * m, s.T)  # [N, T]  sum w m s
            b = cross - wss - wm_s + (wo * m).sum(axis=-1)[:, None]
            c = wss + 2.0 * wm_s + (w * m * m).sum(axis=-1)[:, None]
        ok = c > 0
        c_safe = jnp.where(ok, c, 1.0)
        chi2 = chi2 - jnp.where(ok, b * b / c_safe, 0.0)
        scale = jnp.where(ok, 1.0 + b / c_safe, 0.0)
    chi2 = jnp.maximum(chi2, 0.0)
    return (chi2, scale) if return_scale else chi2


@partial(jax.jit, static_argnames=("k", "free_scale", "precision"))
def match(
    obs: Array,
    weight: Array,
    templates: Array | TemplateBank,
    k: int = 10,
    free_scale: bool = False,
    precision: jax.lax.Precision | None = HIGHEST,
) -> dict[str, Array]:
    """The ``k`` best templates of every target, by chi2.

    Parameters
    ----------
    obs, weight : float32 [N, P]
        Normalised target flux and its inverse variance (0 on masked pixels).
    templates : float32 [T, P] or TemplateBank
        The library (a raw array is centred with `make_bank` on every call; pass a bank to
        do it once).
    k : int
        Templates kept per target, ``1 <= k <= T``.
    free_scale : bool
        Fit one multiplicative scale per (target, template); see `chi2_matrix`.
    precision : jax.lax.Precision
        Of the matrix products; see `chi2_matrix`.

    Returns
    -------
    dict with
        ``top_chi2`` float32 [N, k], ascending; ``top_index`` int32 [N, k], template rows;
        ``n_good`` int32 [N], pixels with positive weight; and with ``free_scale``,
        ``top_scale`` float32 [N, k].
    """
    bank = templates if isinstance(templates, TemplateBank) else make_bank(templates)
    n_templates = bank.flux.shape[0]
    if not 1 <= k <= n_templates:
        raise InputError(f"k = {k} must be between 1 and the {n_templates} templates")
    centred = obs.astype(jnp.float32) - bank.offset[None, :]
    chi2, scale = chi2_matrix(
        centred,
        weight,
        bank.flux,
        bank.flux_sq,
        free_scale=free_scale,
        offset=bank.offset,
        precision=precision,
        return_scale=True,
    )
    neg, index = jax.lax.top_k(-chi2, k)
    out = {
        "top_chi2": -neg,
        "top_index": index.astype(jnp.int32),
        "n_good": (weight > 0).sum(axis=-1).astype(jnp.int32),
    }
    if free_scale:
        out["top_scale"] = jnp.take_along_axis(scale, index, axis=-1)
    return out


def _padded(x: np.ndarray, rows: int) -> np.ndarray:
    """``x`` [n, P] with zero rows up to ``rows``, in memory JAX uses in place on CPUs
    (`sost_jax.runtime.memory.aligned_empty`); ``x`` itself when it already is."""
    if x.shape[0] == rows and is_aligned(x):
        return x
    out = aligned_empty((rows, x.shape[1]), x.dtype)
    out[: x.shape[0]] = x
    out[x.shape[0] :] = 0
    return out


def _replicate(x: np.ndarray, sharding: NamedSharding) -> Array:
    """The same host array on every device of ``sharding`` (also across processes)."""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _local_rows(x: Array) -> np.ndarray:
    """This process's rows of an array sharded along its first axis, in order."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    seen, parts = set(), []
    for s in shards:  # a device holding a replica of rows already taken adds nothing
        start = s.index[0].start or 0
        if start not in seen:
            seen.add(start)
            parts.append(np.asarray(s.data))
    return np.concatenate(parts)


@functools.lru_cache(maxsize=16)
def _sharded_steps(
    mesh: Mesh,
    k: int,
    free_scale: bool,
    precision: jax.lax.Precision | None,
    n_pixels: int,
    options: tuple[tuple[str, float], ...],
):
    """`match` and `estimate`, jitted, each device on its own rows (`jax.shard_map`; under
    plain jit GSPMD all-gathers the [N, T] chi2 block in front of top_k). Cached, so matchers
    with equal settings share the compilations.

    They stay two executables: compiled together, XLA folds estimate's slices of the top k
    into the sort that top_k is lowered to, which defeats its rewrite into a partial top-k
    selection and sorts all T chi2 of every target (a third of the time at T = 2413).
    """
    data, rep = PS("data"), PS()

    def find(obs: Array, weight: Array, bank: TemplateBank) -> dict[str, Array]:
        return match(obs, weight, bank, k, free_scale, precision)

    def judge(found: dict[str, Array], labels: Array) -> dict[str, Array]:
        top = (found["top_chi2"], found["top_index"], labels, found["n_good"], n_pixels)
        return estimate(*top, **dict(options))

    return (
        jax.jit(jax.shard_map(find, mesh=mesh, in_specs=(data, data, rep), out_specs=data)),
        jax.jit(jax.shard_map(judge, mesh=mesh, in_specs=(data, rep), out_specs=data)),
    )


class Matcher:
    """`match` and `estimate` jit-compiled, targets split over a "data" mesh.

    Built by `make_matcher`. Every device matches its own rows (`jax.shard_map`), with no
    communication between devices. Call it with this process's chunk of targets, or use
    `dispatch` and `fetch` to overlap reading the next chunk with the computation.
    """

    def __init__(
        self,
        templates: np.ndarray,
        template_labels: np.ndarray,
        k: int,
        mesh: Mesh,
        free_scale: bool,
        precision: jax.lax.Precision | None,
        estimate_options: Mapping[str, float],
    ):
        templates = np.asarray(templates, np.float32)
        template_labels = np.asarray(template_labels, np.float32)
        if templates.ndim != 2 or template_labels.shape != (templates.shape[0], 3):
            raise InputError(
                f"templates {templates.shape} and labels {template_labels.shape} must be "
                "[T, P] and [T, 3]"
            )
        self.mesh = mesh
        self.k = k
        self.n_pixels = templates.shape[1]
        self.local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
        self.data = NamedSharding(mesh, PS("data"))
        replicated = NamedSharding(mesh, PS())
        offset = templates.astype(np.float64).mean(axis=0)
        centred = (templates - offset[None, :]).astype(np.float32)
        bank = TemplateBank(centred, centred * centred, offset.astype(np.float32))
        self.bank = jax.tree.map(lambda x: _replicate(x, replicated), bank)
        self.labels = _replicate(template_labels, replicated)

        options = tuple(sorted(estimate_options.items()))
        self._match, self._estimate = _sharded_steps(
            mesh, k, free_scale, precision, self.n_pixels, options
        )

    def dispatch(
        self, obs: np.ndarray, weight: np.ndarray, pad_to: int | None = None
    ) -> tuple[dict[str, Array], int]:
        """Start matching this process's rows; returns (device results, number of rows).

        Rows are padded with empty spectra (weight 0) to ``pad_to`` (default: the next
        multiple of this process's devices on the mesh), rounded up to that multiple. Arrays
        of that size from `sost_jax.runtime.memory.aligned_empty` are used in place on CPUs, others
        are copied once (and must not change until `fetch`). Use
        the same ``pad_to`` for every chunk to compile once; in multi-process runs every
        process must pass the same padded size.
        """
        obs = np.asarray(obs, np.float32)
        weight = np.asarray(weight, np.float32)
        n = obs.shape[0]
        if obs.shape != (n, self.n_pixels) or weight.shape != obs.shape:
            raise InputError(
                f"obs {obs.shape} and weight {weight.shape} must be [N, {self.n_pixels}]"
            )
        size = max(n, pad_to or 0, 1)
        size = -(-size // self.local_devices) * self.local_devices
        arrays = [
            jax.make_array_from_process_local_data(self.data, _padded(x, size))
            for x in (obs, weight)
        ]
        found = self._match(*arrays, self.bank)
        return {**found, **self._estimate(found, self.labels)}, n

    @staticmethod
    def fetch(pending: tuple[dict[str, Array], int]) -> dict[str, np.ndarray]:
        """Wait for `dispatch`'s results; this process's rows, padding dropped."""
        out, n = pending
        return {key: _local_rows(value)[:n] for key, value in out.items()}

    def __call__(
        self, obs: np.ndarray, weight: np.ndarray, pad_to: int | None = None
    ) -> dict[str, np.ndarray]:
        """Match ``obs``, ``weight`` [n, P] (this process's rows) against the library.

        Returns
        -------
        dict
            `match`'s ``top_chi2``, ``top_index`` [n, k], ``n_good`` [n] (and ``top_scale``)
            with `estimate`'s [n] columns, as NumPy arrays.
        """
        return self.fetch(self.dispatch(obs, weight, pad_to))


def make_matcher(
    templates: np.ndarray,
    template_labels: np.ndarray,
    k: int = 10,
    mesh: Mesh | None = None,
    free_scale: bool = False,
    *,
    precision: jax.lax.Precision | None = HIGHEST,
    poor_fit: float = 3.0,
    min_fraction: float = 0.5,
    edge_steps: float = 1.0,
    label_steps: tuple[float, float, float] | None = None,
) -> Matcher:
    """A jit-compiled matcher of target chunks against one library, sharded over devices.

    The library is centred (`make_bank`) and replicated on every device once; each chunk of
    targets is split along the mesh axis "data", so every device computes the chi2 of its
    rows against all templates, with no communication.

    Parameters
    ----------
    templates : float32 [T, P]
        Template flux on the targets' grid.
    template_labels : float32 [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of the templates.
    k : int
        Best templates kept per target (>= 2 for the paper's two-template rule).
    mesh : Mesh, optional
        1-D mesh with axis "data"; default every device (`sost_jax.runtime.devices.data_mesh`).
    free_scale : bool
        Fit a multiplicative scale per (target, template).
    precision : jax.lax.Precision
        Of the matrix products (`chi2_matrix`).
    poor_fit, min_fraction, edge_steps : float
        Flag thresholds (`estimate`).
    label_steps : (float, float, float), optional
        Grid step of each label [K, dex, dex] (`estimate`).

    Returns
    -------
    Matcher
    """
    return Matcher(
        templates,
        template_labels,
        k,
        data_mesh() if mesh is None else mesh,
        free_scale,
        precision,
        {
            "poor_fit": poor_fit,
            "min_fraction": min_fraction,
            "edge_steps": edge_steps,
            "label_steps": None if label_steps is None else tuple(map(float, label_steps)),
        },
    )
