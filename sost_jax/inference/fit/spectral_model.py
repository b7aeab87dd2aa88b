"""The observed-domain spectrum model a fit goes through: labels -> flux on a target's pixels.

    model(labels, rv, c) = continuum(c) * shift(emulate(labels), rv)

* ``emulate``: a Payne-style emulator (`sost_jax.library.emulator.Emulator`): the raw synthetic
  emulator ("no translation"), or a *translated emulator* trained on SOST translations of it
  (`sost_jax.library.translated_emulator`), which gives the same model at the cost of an MLP.
* ``shift``: a Doppler shift by the radial velocity ``rv`` [km/s]: the model, rest frame on
  a linear wavelength grid, is seen at ``wave / (1 + rv / c)``, linearly interpolated
  between its pixels (constant beyond its ends).
* ``continuum``: a multiplicative polynomial, ``sum_k c_k P_k(x)`` with Legendre ``P_k`` and
  ``x`` the target grid mapped onto [-1, 1]; degree -1 is none (no multiplicative factor at
  all), degree 0 a free scale.

Everything is pure JAX and batched over spectra through `jax.vmap`. `SpectralModel.jacobian`
gives the model's derivatives with the emulator differentiated only with respect to the
three labels (three tangents through its last layer, not one per fitted parameter): the
shift and the continuum are linear in the emulated flux, so the label columns are the
emulator's Jacobian passed through them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError

Array = jax.Array


def legendre_basis(x: Array | np.ndarray, degree: int) -> Array:
    """Legendre polynomials P_0..P_degree at ``x`` (in [-1, 1]).

    Parameters
    ----------
    x : [P]
    degree : int
        -1 gives an empty basis.

    Returns
    -------
    float32 [degree + 1, P]
    """
    x = jnp.asarray(x, jnp.float32)
    rows = []
    for k in range(degree + 1):
        if k == 0:
            rows.append(jnp.ones_like(x))
        elif k == 1:
            rows.append(x)
        else:  # Bonnet: k P_k = (2k - 1) x P_{k-1} - (k - 1) P_{k-2}
            rows.append(((2 * k - 1) * x * rows[-1] - (k - 1) * rows[-2]) / k)
    return jnp.stack(rows) if rows else jnp.zeros((0, x.shape[0]), jnp.float32)


@struct.dataclass
class ShiftGrid:
    """Where each target pixel falls on the model's linear grid.

    A target wavelength ``w`` seen at radial velocity ``v`` samples the model at
    ``w / (1 + v / c)``, i.e. at pixel ``position - w / step * beta / (1 + beta)``
    (``beta = v / c``): the rest-frame position is exact (float64, then float32) and the
    velocity correction small, so float32 keeps the sampling exact to ~1e-6 pixel.

    Attributes
    ----------
    position : float32 [P]
        Target pixels' positions on the model grid at rest (model pixel units).
    in_steps : float32 [P]
        Target wavelengths over the model's step.
    n_model : int (static)
        Model pixels.
    """

    position: Array
    in_steps: Array
    n_model: int = struct.field(pytree_node=False)


def make_shift_grid(model_wave: np.ndarray, target_wave: np.ndarray) -> ShiftGrid:
    """The `ShiftGrid` of a linear model grid and any target grid (both [Å])."""
    model_wave = np.asarray(model_wave, np.float64)
    target_wave = np.asarray(target_wave, np.float64)
    step = np.diff(model_wave)
    if model_wave.ndim != 1 or model_wave.size < 2 or not np.allclose(step, step[0], rtol=1e-6):
        raise InputError("the model's wavelength grid must be linear (a constant step in Å)")
    if target_wave.ndim != 1 or target_wave.size < 1:
        raise InputError(f"the target grid must be [P] wavelengths, got {target_wave.shape}")
    step = (model_wave[-1] - model_wave[0]) / (model_wave.size - 1)
    return ShiftGrid(
        jnp.asarray((target_wave - model_wave[0]) / step, jnp.float32),
        jnp.asarray(target_wave / step, jnp.float32),
        int(model_wave.size),
    )


def _sampling(rv: Array, grid: ShiftGrid) -> tuple[Array, Array, Array]:
    """Left model pixel [P], interpolation weight of the right one [P], and d position /
    d rv [P] (pixels per km/s; 0 where the position is clamped to the model's ends)."""
    beta = rv / C_KMS
    raw = grid.position - grid.in_steps * (beta / (1.0 + beta))
    position = jnp.clip(raw, 0.0, grid.n_model - 1.0)
    left = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, grid.n_model - 2)
    inside = (raw > 0.0) & (raw < grid.n_model - 1.0)
    slope = jnp.where(inside, -grid.in_steps / (C_KMS * (1.0 + beta) ** 2), 0.0)
    return left, position - left.astype(position.dtype), slope


def doppler_shift(flux: Array, rv: Array, grid: ShiftGrid) -> Array:
    """Rest-frame model flux seen at radial velocity ``rv`` on the target pixels.

    Parameters
    ----------
    flux : [..., M]
        Model flux on the linear grid of ``grid`` (the last axis; leading axes, e.g. the
        Jacobian's columns, are shifted alike).
    rv : scalar
        Radial velocity [km/s] (positive: receding, lines move red-wards).
    grid : ShiftGrid

    Returns
    -------
    [..., P]: ``flux`` at ``target / (1 + rv / c)``, linearly interpolated, constant beyond
    the model grid's ends.
    """
    left, t, _ = _sampling(rv, grid)
    t = t.reshape((1,) * (flux.ndim - 1) + t.shape)
    return flux[..., left] * (1.0 - t) + flux[..., left + 1] * t


def doppler_shift_and_slope(flux: Array, rv: Array, grid: ShiftGrid) -> tuple[Array, Array]:
    """`doppler_shift` of ``flux`` [..., M] and its derivative with respect to ``rv``
    [per km/s], both [..., P], from one gather of the neighbouring pixels."""
    left, t, slope = _sampling(rv, grid)
    lead = (1,) * (flux.ndim - 1)
    lo, hi = flux[..., left], flux[..., left + 1]
    return lo + (hi - lo) * t.reshape(lead + t.shape), (hi - lo) * slope.reshape(lead + t.shape)


@struct.dataclass
class SpectralModel:
    """An emulator seen on a target grid, with RV and continuum (a pytree: its arrays are
    leaves, the rest static, so it passes through `jax.jit`; `model` and `jacobian` are pure
    functions of it).

    Attributes
    ----------
    generate : callable
        ``(params, labels [N, 3]) -> flux [N, M]``, pure (`Emulator.function`).
    params : pytree
        The emulator's arrays.
    grid : ShiftGrid
    basis : float32 [degree + 1, P]
        Continuum polynomials on the target pixels.
    fit_rv : bool
        Whether the RV is a parameter (else it stays at 0 km/s).
    """

    generate: Callable[[Any, Array], Array] = struct.field(pytree_node=False)
    params: Any
    grid: ShiftGrid
    basis: Array
    fit_rv: bool = struct.field(pytree_node=False)

    @property
    def n_continuum(self) -> int:
        return int(self.basis.shape[0])

    @property
    def n_params(self) -> int:
        """3 labels, the RV when fitted, the continuum coefficients."""
        return 3 + int(self.fit_rv) + self.n_continuum

    def split(self, theta: Array) -> tuple[Array, Array, Array]:
        """theta [n_params] -> labels [3], rv (km/s, scalar), continuum coefficients [K]."""
        rv = theta[3] if self.fit_rv else jnp.zeros((), theta.dtype)
        return theta[:3], rv, theta[3 + int(self.fit_rv) :]

    def _outside(self, emulated: Array, rv: Array, coeffs: Array) -> Array:
        """Shift then continuum of emulated flux [..., M] -> [..., P] (linear in it)."""
        shifted = doppler_shift(emulated, rv, self.grid)
        if self.n_continuum:
            shifted = shifted * (coeffs @ self.basis)
        return shifted

    def model(self, theta: Array) -> Array:
        """One spectrum's model flux [P] at theta [n_params] (labels in K, dex, dex)."""
        labels, rv, coeffs = self.split(theta)
        emulated = self.generate(self.params, labels[None, :])[0]
        return self._outside(emulated, rv, coeffs)

    def jacobian(self, theta: Array) -> tuple[Array, Array]:
        """Model flux [P] and its Jacobian [P, n_params] at theta [n_params].

        The emulator is differentiated with respect to the three labels only (`jax.jacfwd`,
        three tangents); the RV and continuum columns are the derivatives of the cheap
        outer steps.
        """
        labels, rv, coeffs = self.split(theta)

        def emulate(x: Array) -> Array:
            return self.generate(self.params, x[None, :])[0]

        def tangent(direction: Array) -> tuple[Array, Array]:
            return jax.jvp(emulate, (labels,), (direction,))

        # the primal does not depend on the mapped direction: computed once
        emulated, emulated_jac = jax.vmap(tangent, out_axes=(None, 0))(
            jnp.eye(3, dtype=labels.dtype)
        )
        stacked = jnp.concatenate([emulated[None, :], emulated_jac], axis=0)  # [4, M]
        shifted, slope = doppler_shift_and_slope(stacked, rv, self.grid)
        continuum = coeffs @ self.basis if self.n_continuum else jnp.ones_like(shifted[0])
        columns = [shifted[1:] * continuum[None, :]]  # labels [3, P]
        if self.fit_rv:
            columns.append((slope[0] * continuum)[None, :])
        if self.n_continuum:
            columns.append(self.basis * shifted[0][None, :])
        return shifted[0] * continuum, jnp.concatenate(columns, axis=0).T


def make_spectral_model(
    emulator: Any,
    target_wave: np.ndarray | None = None,
    continuum_degree: int = -1,
    fit_rv: bool = True,
) -> SpectralModel:
    """The `SpectralModel` of an emulator on a target grid.

    Parameters
    ----------
    emulator : `sost_jax.library.emulator.Emulator`
        Raw or translated; its wavelength grid must be linear.
    target_wave : [P], optional
        Wavelengths of the target's pixels [Å]; default the emulator's.
    continuum_degree : int
        Degree of the multiplicative Legendre continuum; -1 none.
    fit_rv : bool
        Fit the radial velocity.
    """
    if emulator.wave is None:
        raise InputError("the emulator has no wavelength grid; a fit needs one")
    target = emulator.wave if target_wave is None else np.asarray(target_wave, np.float64)
    if int(continuum_degree) < -1:
        raise InputError(f"continuum degree must be >= -1 (none), got {continuum_degree}")
    span = target[-1] - target[0]
    x = 2.0 * (target - target[0]) / (span if span > 0 else 1.0) - 1.0
    return SpectralModel(
        generate=emulator.function,
        params=emulator.arrays,
        grid=make_shift_grid(emulator.wave, target),
        basis=legendre_basis(x, int(continuum_degree)),
        fit_rv=bool(fit_rv),
    )
