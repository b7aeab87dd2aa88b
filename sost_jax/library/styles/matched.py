"""The paper's style source: the style of the chi2-matched observed partner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.inference.matching import chi2_matrix
from sost_jax.library.styles.base import StyleContext, _check_n

Array = jax.Array


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
    products of `sost_jax.inference.matching.chi2_matrix`, with the observed spectra in the role of
    targets (they carry the pixel weights) and the synthetic spectra as templates, streamed
    over the observed set in chunks; the minimum over observed spectra is kept per
    synthetic spectrum (equivalent to `sost_jax.inference.matching.match` with k = 1 in the
    direction synthetic -> observed). The partner's style code comes from ``encode`` (the observed
    domain's style encoder), applied to the chosen observed spectra only.

    The key is not used: the styles are a deterministic function of the synthetic spectra.

    Parameters
    ----------
    observed : PreparedStore, or (flux [M, P], weight [M, P])
        The observed spectra to choose partners from (normalised; weight 0 on masked pixels).
    encode : callable
        ``encode(flux [B, P]) -> styles [B, d]`` of observed spectra, e.g.
        `sost_jax.sost.translation.Translator.observed_styles`.
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
