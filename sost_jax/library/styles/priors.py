"""Style priors fitted to observed style codes: a Gaussian, a Gaussian mixture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.errors import InputError
from sost_jax.library.styles.base import StyleContext, _check_n

Array = jax.Array


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
