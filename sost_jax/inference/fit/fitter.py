"""The batched fitter: `fit_spectra` jit-compiled and sharded, in rounds over the spectra left.

`Fitter` splits spectra over a 1-D "data" mesh (the `SpectralModel` replicated) and runs the
Levenberg-Marquardt iterations of `sost_jax.inference.fit.fitting` (`start_fit`,
`iterate_fit`, `finish_fit`) a few at a time, gathering the spectra still iterating into
smaller batches between rounds; the result is that of `fit_spectra`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as PS

from sost_jax.errors import InputError
from sost_jax.inference.fit.fitting import FitSettings, finish_fit, iterate_fit, start_fit
from sost_jax.inference.fit.spectral_model import SpectralModel

Array = jax.Array


@functools.lru_cache(maxsize=16)
def _sharded(mesh: Mesh, settings: FitSettings, n_steps: int):
    """`start_fit`, `iterate_fit` (``n_steps``) and `finish_fit`, jitted, each device on its
    own rows (`jax.shard_map`), the model replicated."""
    data, rep = PS("data"), PS()

    def begin(model: SpectralModel, flux: Array, ivar: Array, start: Array):
        return start_fit(model, flux, ivar, start, settings)

    def step(model: SpectralModel, state: dict[str, Array]):
        return iterate_fit(model, state, settings, n_steps)

    def end(model: SpectralModel, state: dict[str, Array]):
        return finish_fit(model, state, settings)

    def sharded(fn, n_in: int):
        specs = (rep,) + (data,) * n_in
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=data))

    return sharded(begin, 3), sharded(step, 1), sharded(end, 1)


class Fitter:
    """`fit_spectra` jit-compiled, spectra split over a "data" mesh, the model replicated.

    Call it with host arrays of any number of spectra; they are padded to the smallest of
    ``pad_to / 2^k`` that holds them (or a multiple of ``pad_to``; each size a multiple of
    the device count), so a survey's chunks reuse a few compilations and a short last chunk
    is not fitted at full size.

    Spectra converge after different numbers of iterations (on the mock: a median of 3, 10%
    need more than 5), and a batch iterates until its slowest member is done. So the batch
    runs ``round_steps`` iterations, then the spectra still iterating are gathered (on the
    host) into the smallest such batch that holds them, and so on: the work follows the
    number of spectra left, not the slowest one.
    The result is the same as one long loop (each spectrum's iterations do not depend on
    the others').
    """

    def __init__(
        self,
        model: SpectralModel,
        settings: FitSettings,
        mesh: Mesh,
        pad_to: int = 1,
        round_steps: int = 3,
    ):
        if settings.continuum_degree + 1 != model.n_continuum or settings.fit_rv != model.fit_rv:
            raise InputError("the fit settings' continuum degree and fit_rv must be the model's")
        self.settings, self.mesh = settings, mesh
        self.pad_to = max(int(pad_to), 1)
        self.model = jax.device_put(model, NamedSharding(mesh, PS()))
        self._data = NamedSharding(mesh, PS("data"))
        self._begin, self._step, self._end = _sharded(mesh, settings, max(int(round_steps), 1))

    def _bucket(self, n: int) -> int:
        """Rows a batch of ``n`` spectra is padded to: ``pad_to / 2^k`` (a multiple of the
        device count), the smallest that holds them, or a multiple of ``pad_to`` above it;
        so a survey's chunks and their leftover rounds share a few compilations."""
        n_dev = self.mesh.devices.size
        unit = int(np.lcm(self.pad_to, n_dev))
        if n > unit:
            return -(-n // unit) * unit
        bucket = unit
        while bucket // 2 >= n and (bucket // 2) % n_dev == 0 and bucket > n_dev:
            bucket //= 2
        return bucket

    def _put(self, tree: Any) -> Any:
        return jax.device_put(tree, self._data)

    def __call__(
        self, flux: np.ndarray, ivar: np.ndarray, start: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Fit ``flux``, ``ivar`` [N, P] from ``start`` [N, 3]; host arrays of [N] out."""
        n = int(np.shape(flux)[0])
        size = self._bucket(n)

        def pad(x: np.ndarray, fill: float) -> np.ndarray:
            x = np.asarray(x, np.float32)
            out = np.full((size,) + x.shape[1:], fill, np.float32)
            out[:n] = x
            return out

        state = self._begin(
            self.model, *self._put((pad(flux, 0.0), pad(ivar, 0.0), pad(start, np.nan)))
        )
        state = self._step(self.model, state)
        host = {k: np.array(v) for k, v in jax.device_get(state).items()}
        while True:
            left = np.flatnonzero(~host["done"] & (host["n_iter"] < self.settings.max_iter))
            if not left.size:
                break
            bucket = self._bucket(left.size)
            rows = np.concatenate([left, np.full(bucket - left.size, left[0])])
            sub = {k: v[rows] for k, v in host.items()}
            sub["done"][left.size :] = True  # padding rows stay put
            sub = jax.device_get(self._step(self.model, self._put(sub)))
            for k, v in sub.items():
                host[k][left] = np.asarray(v)[: left.size]
        found = self._end(self.model, self._put(host))
        return {k: np.asarray(v)[:n] for k, v in found.items()}
