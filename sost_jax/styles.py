"""Style sources: where the style code comes from when synthetic spectra are translated.

A MUNIT decoder needs a style code [d] for every spectrum it writes. SOST translates a
synthetic spectrum (domain "a") into the observed domain ("b") with the content code of the
synthetic spectrum and a style code of domain "b". That style can come from

* the observed spectrum that best matches the synthetic one, through the observed domain's
  style encoder (`MatchedObservedStyle`; what Yan et al. did);
* the N(0, 1) prior the style codes were trained against (`PriorStyle`);
* a user-supplied prior: one fixed vector (`FixedStyle`), a Gaussian (`GaussianStyle`) or a
  Gaussian mixture (`MixtureStyle`) fitted to the style codes of any set of observed spectra
  (`fit_gaussian`, `fit_mixture`; saved and loaded as ``.npz``), or any function
  ``(key, n) -> styles [n, d]`` (`CallableStyle`).

Every source is a `StyleSource`: a callable ``source(key, n, context) -> styles [n, d]``
(float32), deterministic for a given key. ``context`` (`StyleContext`) carries the synthetic
spectra being translated and their labels; only the matched source reads it. Each source has
a ``spec``, a short text naming it, written into a library's provenance.

Config files and command lines name a source with a string (`style_source_from_spec`):

=================  ============================================================
``prior``          N(0, 1)
``fixed:v1,...``   the fixed vector (v1, ..., vd)
``gaussian:PATH``  a Gaussian saved with `GaussianStyle.save`
``mixture:PATH``   a Gaussian mixture saved with `MixtureStyle.save`
``matched``        the style of the best chi2-matching observed spectrum (the paper)
=================  ============================================================

Example
-------
Fit a two-component mixture to the styles of a set of observed spectra, save it, and use it
to translate a library::

    from sost_jax import styles
    from sost_jax.translation import translator_from_run

    tr = translator_from_run("runs/sost")
    codes = tr.observed_styles(observed_flux)          # [M, d], style encoder of domain b
    styles.fit_mixture(codes, n_components=2, seed=0).save("styles.npz")

    source = styles.style_source_from_spec("mixture:styles.npz", tr.style_dim)
    s = source(jax.random.PRNGKey(0), 100)             # [100, d]
    translated = tr(synthetic_flux, s)                 # [100, P]

and for the paper's choice::

    source = styles.style_source_from_spec(
        "matched", tr.style_dim, observed=PreparedStore("stores/observed"),
        encode=tr.observed_styles,
    )
    s = source(key, n, styles.StyleContext(flux=synthetic_flux))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.errors import InputError
from sost_jax.matching import chi2_matrix
from sost_jax.store import PreparedStore

Array = jax.Array

SPEC_KINDS = ("prior", "fixed", "gaussian", "mixture", "matched")
"""The kinds of source a spec string can name (`style_source_from_spec`)."""


@dataclass(frozen=True)
class StyleContext:
    """What a style source may look at besides the key and the count.

    Attributes
    ----------
    flux : float32 [n, P], optional
        The synthetic spectra (normalised) about to be translated.
    labels : float [n, 3], optional
        Their Teff [K], log g [dex], [Fe/H] [dex].
    """

    flux: Any = None
    labels: Any = None


@runtime_checkable
class StyleSource(Protocol):
    """``source(key, n, context=None) -> styles`` float32 [n, d], the same for the same key.

    Attributes
    ----------
    dim : int
        Style code length d.
    spec : str
        Short description for provenance (a `style_source_from_spec` string when possible).
    """

    dim: int
    spec: str

    def __call__(
        self, key: Array, n: int, context: StyleContext | None = None
    ) -> Array: ...  # pragma: no cover


def _check_n(n: int) -> int:
    n = int(n)
    if n < 0:
        raise InputError(f"the number of styles must be >= 0, got {n}")
    return n


def _format_vector(v: np.ndarray) -> str:
    return ",".join(f"{x:.9g}" for x in np.asarray(v, np.float64))


class PriorStyle:
    """Styles from the N(0, 1) prior of the style space (as during training)."""

    def __init__(self, dim: int):
        if int(dim) < 1:
            raise InputError(f"style dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.spec = "prior"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        return jax.random.normal(key, (_check_n(n), self.dim), jnp.float32)

    def __repr__(self) -> str:
        return f"PriorStyle(dim={self.dim})"


class FixedStyle:
    """One style vector for every spectrum.

    Parameters
    ----------
    vector : [d]
    """

    def __init__(self, vector: Any):
        v = np.asarray(vector, np.float32)
        if v.ndim != 1 or v.size < 1 or not np.isfinite(v).all():
            raise InputError(f"a fixed style must be a finite [d] vector, got shape {v.shape}")
        self.vector = v
        self.dim = int(v.size)
        self.spec = f"fixed:{_format_vector(v)}"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        return jnp.broadcast_to(jnp.asarray(self.vector), (_check_n(n), self.dim))

    def __repr__(self) -> str:
        return f"FixedStyle({self.spec[6:]})"


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive semi-definite matrix (float64); a
    tiny diagonal jitter is added when it is singular."""
    cov = 0.5 * (cov + cov.T)
    jitter = 0.0
    scale = max(float(np.trace(cov)) / cov.shape[0], 1e-30)
    for _ in range(8):
        try:
            return np.linalg.cholesky(cov + jitter * np.eye(cov.shape[0]))
        except np.linalg.LinAlgError:
            jitter = scale * 1e-10 if jitter == 0.0 else jitter * 100.0
    raise InputError("the covariance matrix is not positive semi-definite")


def _check_mean_cov(mean: Any, cov: Any) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, np.float64)
    cov = np.asarray(cov, np.float64)
    if mean.ndim != 1 or mean.size < 1 or cov.shape != (mean.size, mean.size):
        raise InputError(f"mean must be [d] and cov [d, d]; got {mean.shape} and {cov.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise InputError("mean and cov must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12 * max(np.abs(cov).max(), 1e-30)):
        raise InputError("cov must be symmetric")
    return mean, cov


class GaussianStyle:
    """Styles drawn from a Gaussian N(mean, cov) (e.g. fitted to observed styles).

    Parameters
    ----------
    mean : [d]
    cov : [d, d]
        Symmetric positive semi-definite.
    source : str, optional
        Where it came from (a file), for ``spec``.
    """

    kind = "gaussian"

    def __init__(self, mean: Any, cov: Any, source: str | None = None):
        self.mean, self.cov = _check_mean_cov(mean, cov)
        self.dim = int(self.mean.size)
        self._chol = jnp.asarray(_cholesky(self.cov), jnp.float32)
        self._mean = jnp.asarray(self.mean, jnp.float32)
        self.spec = f"gaussian:{source}" if source else f"gaussian(d={self.dim})"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        z = jax.random.normal(key, (_check_n(n), self.dim), jnp.float32)
        return self._mean[None, :] + z @ self._chol.T

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``kind``, ``mean``, ``cov`` to an ``.npz`` file; returns its path."""
        path = Path(path)
        with open(path, "wb") as fh:  # np.savez would append ".npz" to other names
            np.savez(fh, kind=np.array(self.kind), mean=self.mean, cov=self.cov)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GaussianStyle:
        """Read a file written by `save`."""
        z = _load_npz(path, cls.kind, ("mean", "cov"))
        return cls(z["mean"], z["cov"], source=str(path))

    def __repr__(self) -> str:
        return f"GaussianStyle(dim={self.dim})"


class MixtureStyle:
    """Styles drawn from a Gaussian mixture sum_k w_k N(mean_k, cov_k).

    Parameters
    ----------
    weights : [K]
        Non-negative, normalised to sum to 1.
    means : [K, d]
    covs : [K, d, d]
    source : str, optional
        Where it came from (a file), for ``spec``.
    """

    kind = "mixture"

    def __init__(self, weights: Any, means: Any, covs: Any, source: str | None = None):
        w = np.asarray(weights, np.float64)
        means = np.asarray(means, np.float64)
        covs = np.asarray(covs, np.float64)
        if w.ndim != 1 or w.size < 1 or means.ndim != 2 or means.shape[0] != w.size:
            raise InputError(
                f"weights must be [K] and means [K, d]; got {w.shape} and {means.shape}"
            )
        if covs.shape != (w.size, means.shape[1], means.shape[1]):
            raise InputError(f"covs must be [K, d, d] = {(w.size, *means.shape[1:] * 2)}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise InputError(f"weights must be non-negative and not all zero, got {w}")
        pairs = [_check_mean_cov(m, c) for m, c in zip(means, covs, strict=True)]
        self.weights = w / w.sum()
        self.means = np.stack([m for m, _ in pairs])
        self.covs = np.stack([c for _, c in pairs])
        self.dim = int(means.shape[1])
        self.n_components = int(w.size)
        self._logw = jnp.asarray(np.log(np.maximum(self.weights, 1e-300)), jnp.float32)
        self._means = jnp.asarray(self.means, jnp.float32)
        self._chols = jnp.asarray(np.stack([_cholesky(c) for c in self.covs]), jnp.float32)
        self.spec = f"mixture:{source}" if source else f"mixture(K={w.size}, d={self.dim})"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        n = _check_n(n)
        k_comp, k_z = jax.random.split(key)
        comp = jax.random.categorical(k_comp, self._logw, shape=(n,))
        z = jax.random.normal(k_z, (n, self.dim), jnp.float32)
        offsets = jnp.einsum("nij,nj->ni", self._chols[comp], z)
        return self._means[comp] + offsets

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``kind``, ``weights``, ``means``, ``covs`` to an ``.npz`` file."""
        path = Path(path)
        with open(path, "wb") as fh:
            np.savez(
                fh, kind=np.array(self.kind), weights=self.weights, means=self.means, covs=self.covs
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MixtureStyle:
        """Read a file written by `save`."""
        z = _load_npz(path, cls.kind, ("weights", "means", "covs"))
        return cls(z["weights"], z["means"], z["covs"], source=str(path))

    def __repr__(self) -> str:
        return f"MixtureStyle(K={self.n_components}, dim={self.dim})"


def _load_npz(path: str | os.PathLike, kind: str, names: tuple[str, ...]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"style prior file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        found = str(z["kind"]) if "kind" in z.files else None
        if found != kind:
            raise InputError(f"{path} holds a {found!r} style prior, not a {kind!r} one")
        missing = [k for k in names if k not in z.files]
        if missing:
            raise InputError(f"{path} lacks {missing}")
        return {k: z[k] for k in names}


def load_prior(path: str | os.PathLike) -> GaussianStyle | MixtureStyle:
    """A saved Gaussian or mixture, whichever the file holds."""
    with np.load(Path(path), allow_pickle=False) as z:
        kind = str(z["kind"]) if "kind" in z.files else None
    known = {GaussianStyle.kind: GaussianStyle, MixtureStyle.kind: MixtureStyle}
    if kind not in known:
        raise InputError(f"{path} is not a saved style prior (kind {kind!r})")
    return known[kind].load(path)


def _check_samples(styles: Any, at_least: int) -> np.ndarray:
    x = np.asarray(styles, np.float64)
    if x.ndim != 2:
        raise InputError(f"styles must be [M, d], got shape {x.shape}")
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] < at_least:
        raise InputError(f"need at least {at_least} finite style vectors, got {x.shape[0]}")
    return x


def fit_gaussian(styles: Any, reg: float = 1e-6) -> GaussianStyle:
    """Maximum-likelihood Gaussian of a set of style codes.

    Parameters
    ----------
    styles : [M, d]
        Style codes (rows with NaN/inf are ignored); M >= 2.
    reg : float
        Added to the diagonal of the covariance, keeping it positive definite.
    """
    x = _check_samples(styles, 2)
    mean = x.mean(axis=0)
    centred = x - mean[None, :]
    cov = centred.T @ centred / x.shape[0] + reg * np.eye(x.shape[1])
    return GaussianStyle(mean, cov)


def fit_mixture(
    styles: Any,
    n_components: int,
    seed: int = 0,
    n_iter: int = 200,
    tol: float = 1e-6,
    reg: float = 1e-6,
) -> MixtureStyle:
    """A Gaussian mixture fitted to style codes by expectation-maximisation
    (`sklearn.mixture.GaussianMixture`, full covariances, k-means++ initialisation).

    The same seed gives the same mixture.

    Parameters
    ----------
    styles : [M, d]
        Style codes (rows with NaN/inf are ignored); M >= n_components.
    n_components : int
        K.
    seed : int
    n_iter : int
        Most EM iterations.
    tol : float
        Convergence threshold on the mean log-likelihood per sample.
    reg : float
        Added to the diagonal of every covariance (keeps components from collapsing).
    """
    from sklearn.mixture import GaussianMixture

    k = int(n_components)
    if k < 1:
        raise InputError(f"n_components must be >= 1, got {n_components}")
    x = _check_samples(styles, max(k, 2))
    gm = GaussianMixture(
        k,
        covariance_type="full",
        tol=tol,
        reg_covar=reg,
        max_iter=int(n_iter),
        init_params="k-means++",
        random_state=seed,
    ).fit(x)
    return MixtureStyle(gm.weights_, gm.means_, gm.covariances_)


class CallableStyle:
    """Styles from any function ``fn(key, n) -> [n, d]``.

    Parameters
    ----------
    fn : callable
    dim : int
        d; the output shape is checked against it.
    name : str, optional
        For ``spec`` (default the function's name).
    """

    def __init__(self, fn: Callable[[Array, int], Any], dim: int, name: str | None = None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.dim = int(dim)
        self.spec = f"callable:{name or getattr(fn, '__qualname__', type(fn).__name__)}"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        n = _check_n(n)
        out = jnp.asarray(self.fn(key, n), jnp.float32)
        if out.shape != (n, self.dim):
            raise InputError(f"{self.spec} returned shape {out.shape}, expected {(n, self.dim)}")
        return out

    def __repr__(self) -> str:
        return f"CallableStyle({self.spec[9:]}, dim={self.dim})"


@jax.jit
def _nearest_in_chunk(
    obs: Array, weight: Array, good: Array, syn: Array, syn_sq: Array, offset: Array
) -> tuple[Array, Array]:
    """Per synthetic spectrum, the smallest weighted mean squared difference to a chunk of
    observed spectra (sum of weight x difference^2 over each observed spectrum's good
    pixels, divided by their number) and its row in the chunk."""
    centred = obs - offset[None, :]
    chi2 = chi2_matrix(centred, weight, syn, syn_sq)  # [C, n]
    n_good = good.sum(axis=1)
    dist = jnp.where(n_good[:, None] > 0, chi2 / jnp.maximum(n_good, 1.0)[:, None], jnp.inf)
    return dist.min(axis=0), jnp.argmin(dist, axis=0).astype(jnp.int32)


class MatchedObservedStyle:
    """The style of the observed spectrum that best matches each synthetic spectrum (paper).

    For every synthetic spectrum ``s`` (from the context) the observed partner is

        argmin_m  sum_p u[m, p] (s[p] - o[m, p])^2 / sum_p g[m, p]

    over the observed spectra with S/N >= ``min_snr`` (all when 0), where ``g`` = 1 where
    observed spectrum ``m`` has data (weight > 0) and 0 elsewhere, and ``u`` is ``g``
    (``weighting="mask"``: the mean squared flux difference over its good pixels) or its inverse
    variance (``weighting="ivar"``: its reduced chi2, the paper's "smallest chi2 weighted by the
    errors", used there among S/N > 30 spectra). Dividing by the number of good pixels keeps
    spectra with many masked pixels from being favoured. Without an S/N cut, weighting by
    the inverse variance favours the noisiest spectra (their chi2 is smallest), which is why
    "mask" is the default and the paper pairs "ivar" with ``min_snr`` 30. The sums are the matrix
    products of `sost_jax.matching.chi2_matrix`, with the observed spectra in the role of
    targets (they carry the pixel weights) and the synthetic spectra as templates, streamed
    over the observed set in chunks; the minimum over observed spectra is kept per
    synthetic spectrum (equivalent to `sost_jax.matching.match` with k = 1 in the direction
    synthetic -> observed). The partner's style code comes from ``encode`` (the observed
    domain's style encoder), applied to the chosen observed spectra only.

    The key is not used: the styles are a deterministic function of the synthetic spectra.

    Parameters
    ----------
    observed : PreparedStore, or (flux [M, P], weight [M, P])
        The observed spectra to choose partners from (normalised; weight 0 on masked pixels).
    encode : callable
        ``encode(flux [B, P]) -> styles [B, d]`` of observed spectra, e.g.
        `sost_jax.translation.Translator.observed_styles`.
    dim : int
        d.
    chunk_size : int
        Observed spectra per chi2 block ([chunk_size, n] floats are held at once).
    weighting : "mask" or "ivar"
        Pixel weights of the distance (above).
    min_snr : float
        Only observed spectra with S/N >= this are partners (the store's meta ``snr``, or
        ``snr`` for arrays); 0 takes all.
    snr : [M], optional
        S/N of array inputs (with ``min_snr`` > 0).
    """

    def __init__(
        self,
        observed: PreparedStore | tuple[Any, Any],
        encode: Callable[[Any], Any],
        dim: int,
        chunk_size: int = 2048,
        weighting: str = "mask",
        min_snr: float = 0.0,
        snr: Any = None,
    ):
        if isinstance(observed, PreparedStore):
            self._store: PreparedStore | None = observed
            self._flux = self._weight = None
            self.n_observed, self.n_pixels = len(observed), observed.n_pixels
            where = str(observed.root)
        else:
            flux, weight = (np.asarray(a, np.float32) for a in observed)
            if flux.ndim != 2 or weight.shape != flux.shape:
                raise InputError(
                    f"observed flux {flux.shape} and weight {weight.shape} must be [M, P]"
                )
            self._store, self._flux, self._weight = None, flux, weight
            self.n_observed, self.n_pixels = flux.shape
            where = f"{self.n_observed} spectra"
        if self.n_observed < 1:
            raise InputError("no observed spectra to match against")
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
        if weighting not in ("mask", "ivar"):
            raise InputError(f"weighting must be 'mask' or 'ivar', got {weighting!r}")
        self.rows = self._eligible(float(min_snr), snr, where)
        self.encode = encode
        self.dim = int(dim)
        self.chunk_size = int(min(chunk_size, self.rows.size))
        self.weighting = weighting
        self.min_snr = float(min_snr)
        self.spec = "matched"
        self.observed_description = where

    def _eligible(self, min_snr: float, snr: Any, where: str) -> np.ndarray:
        """Rows of the observed set with S/N >= ``min_snr`` (all when 0)."""
        if min_snr <= 0:
            return np.arange(self.n_observed)
        if self._store is not None:
            if "snr" not in self._store.meta:
                raise InputError(
                    f"matching among S/N >= {min_snr} spectra, but {where} records no S/N "
                    "(meta 'snr'); set library.match_min_snr=0"
                )
            snr = self._store.meta["snr"]
        elif snr is None:
            raise InputError(f"min_snr = {min_snr} needs the observed spectra's S/N (snr=)")
        snr = np.nan_to_num(np.asarray(snr, np.float64), nan=-np.inf)
        if snr.shape != (self.n_observed,):
            raise InputError(f"snr has shape {snr.shape}, expected ({self.n_observed},)")
        rows = np.flatnonzero(snr >= min_snr)
        if rows.size == 0:
            raise InputError(f"no observed spectrum in {where} has S/N >= {min_snr}")
        return rows

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(rows, flux, weight) of the eligible observed spectra, chunk by chunk."""
        for lo in range(0, self.rows.size, self.chunk_size):
            rows = self.rows[lo : lo + self.chunk_size]
            if self._store is not None:
                arrays = self._store.read(rows)
                yield rows, arrays["flux"], arrays["weight"]
            else:
                yield rows, self._flux[rows], self._weight[rows]

    def _read(self, index: np.ndarray) -> np.ndarray:
        if self._store is not None:
            return self._store.read(index)["flux"]
        return self._flux[index]

    def partners(self, flux: Any) -> tuple[np.ndarray, np.ndarray]:
        """The best-matching observed spectrum of every synthetic spectrum.

        Parameters
        ----------
        flux : [n, P]
            Synthetic spectra (normalised).

        Returns
        -------
        index : int64 [n]
            Row of the partner in the observed set (the lowest row on ties).
        distance : float32 [n]
            Its weighted mean squared flux difference over the partner's good pixels.
        """
        syn = np.asarray(flux, np.float32)
        if syn.ndim != 2 or syn.shape[1] != self.n_pixels:
            raise InputError(
                f"synthetic flux must be [n, {self.n_pixels}] like the observed, got {syn.shape}"
            )
        n = syn.shape[0]
        best = np.full(n, np.inf, np.float32)
        index = np.zeros(n, np.int64)
        if n == 0:
            return index, best
        offset = syn.astype(np.float64).mean(axis=0).astype(np.float32)
        centred = syn - offset[None, :]
        syn_j, syn_sq, offset_j = (
            jnp.asarray(centred),
            jnp.asarray(centred * centred),
            jnp.asarray(offset),
        )
        for rows, obs, weight in self._chunks():
            weight = np.nan_to_num(weight, nan=0.0, posinf=0.0).astype(np.float32)
            good = (weight > 0).astype(np.float32)
            use = good if self.weighting == "mask" else np.where(weight > 0, weight, 0.0)
            if rows.size < self.chunk_size:  # pad to one compiled shape; empty rows never win
                pad = ((0, self.chunk_size - rows.size), (0, 0))
                obs, good, use = np.pad(obs, pad), np.pad(good, pad), np.pad(use, pad)
            dist, arg = _nearest_in_chunk(
                jnp.asarray(obs), jnp.asarray(use), jnp.asarray(good), syn_j, syn_sq, offset_j
            )
            dist, arg = np.asarray(dist), np.asarray(arg)
            better = dist < best
            best[better] = dist[better]
            index[better] = rows[arg[better]]
        if not np.isfinite(best).all():
            raise InputError("no observed spectrum has any pixel with data")
        return index, best

    def partner_ids(self, index: np.ndarray) -> np.ndarray | None:
        """The store's ``id`` of observed rows ``index``; None for arrays or without ids."""
        if self._store is None or "id" not in self._store.meta:
            return None
        return np.asarray(self._store.meta["id"])[np.asarray(index, np.int64)]

    def styles_and_partners(self, flux: Any) -> tuple[Array, np.ndarray]:
        """(styles [n, d] float32, partner rows [n]) for synthetic spectra ``flux``."""
        index, _ = self.partners(flux)
        if index.size == 0:
            return jnp.zeros((0, self.dim), jnp.float32), index
        unique, inverse = np.unique(index, return_inverse=True)
        codes = jnp.asarray(self.encode(self._read(unique)), jnp.float32)
        if codes.shape != (unique.size, self.dim):
            raise InputError(f"encode returned {codes.shape}, expected {(unique.size, self.dim)}")
        return codes[jnp.asarray(inverse.reshape(-1))], index

    def styles_and_columns(
        self, key: Array, n: int, context: StyleContext | None = None
    ) -> tuple[Array, dict[str, np.ndarray]]:
        """`__call__`'s styles and each template's partner: ``partner`` (its row among the
        observed spectra) and, for a store with ids, ``partner_id``."""
        if context is None or context.flux is None:
            raise InputError("the matched style source needs the synthetic spectra (context.flux)")
        if np.shape(context.flux)[0] != _check_n(n):
            raise InputError(f"n = {n} but the context holds {np.shape(context.flux)[0]} spectra")
        styles, partners = self.styles_and_partners(context.flux)
        columns = {"partner": partners.astype(np.int64)}
        ids = self.partner_ids(partners)
        if ids is not None:
            columns["partner_id"] = ids.astype(str)
        return styles, columns

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        return self.styles_and_columns(key, n, context)[0]

    def __repr__(self) -> str:
        cut = f", S/N >= {self.min_snr:g}" if self.min_snr > 0 else ""
        where = self.observed_description
        return f"MatchedObservedStyle({where}, {self.weighting}{cut}, dim={self.dim})"


def draw(
    source: StyleSource, key: Array, n: int, context: StyleContext | None = None
) -> tuple[Array, dict[str, np.ndarray]]:
    """A source's styles [n, d] and the per-template columns it records (a source with a
    ``styles_and_columns`` method, e.g. the matched one's partners; none for the others)."""
    with_columns = getattr(source, "styles_and_columns", None)
    if with_columns is not None:
        return with_columns(key, n, context)
    return source(key, n, context), {}


def describe(source: Any) -> str:
    """A source's ``spec`` (its repr for callables without one)."""
    return str(getattr(source, "spec", repr(source)))


def style_source_from_spec(
    spec: str,
    dim: int,
    *,
    observed: PreparedStore | str | os.PathLike | tuple[Any, Any] | None = None,
    encode: Callable[[Any], Any] | None = None,
    match_weight: str = "mask",
    match_min_snr: float = 0.0,
) -> StyleSource:
    """The style source named by a config or command-line string.

    Parameters
    ----------
    spec : str
        ``prior``, ``fixed:v1,v2,...``, ``gaussian:PATH``, ``mixture:PATH`` or ``matched``
        (see the module docstring).
    dim : int
        The model's style dimension d; fixed vectors and loaded priors must have it.
    observed : PreparedStore, path to one, or (flux, weight); only for ``matched``
        The observed spectra to choose partners from.
    encode : callable; only for ``matched``
        The observed domain's style encoder, ``flux [B, P] -> styles [B, d]``.
    match_weight, match_min_snr : only for ``matched``
        Pixel weights ("mask" or "ivar") and the partners' S/N cut (`MatchedObservedStyle`).

    Raises
    ------
    ValueError
        An unknown kind, a malformed vector, a dimension other than ``dim``, or ``matched``
        without ``observed`` and ``encode``.
    """
    text = str(spec).strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind not in SPEC_KINDS:
        raise InputError(
            f"unknown style source {spec!r}: expected one of 'prior', 'fixed:v1,v2,...', "
            "'gaussian:PATH', 'mixture:PATH', 'matched'"
        )
    takes_arg = kind in ("fixed", "gaussian", "mixture")
    if takes_arg and not arg:
        raise InputError(f"style source {kind!r} needs an argument: '{kind}:...' (got {spec!r})")
    if not takes_arg and sep:
        raise InputError(f"style source {kind!r} takes no argument (got {spec!r})")

    source: StyleSource
    if kind == "prior":
        source = PriorStyle(dim)
    elif kind == "fixed":
        try:
            values = [float(v) for v in arg.split(",")]
        except ValueError:
            raise InputError(f"'fixed:' needs comma-separated numbers, got {arg!r}") from None
        source = FixedStyle(values)
    elif kind == "gaussian":
        source = GaussianStyle.load(arg)
    elif kind == "mixture":
        source = MixtureStyle.load(arg)
    else:
        if observed is None or encode is None:
            raise InputError(
                "style source 'matched' needs the observed spectra (observed=) and the "
                "observed domain's style encoder (encode=)"
            )
        if isinstance(observed, (str, os.PathLike)):
            observed = PreparedStore(observed)
        source = MatchedObservedStyle(
            observed, encode, dim, weighting=match_weight, min_snr=match_min_snr
        )
    if source.dim != int(dim):
        raise InputError(f"style source {spec!r} has dimension {source.dim}, the model {dim}")
    return source
