"""SOST losses (MUNIT): reconstruction L1, latent reconstruction, cycle, LSGAN; and the
reconstruction statistic of the paper's Fig. 7."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def masked_l1(pred: Array, target: Array, mask: Array | None = None) -> Array:
    """Mean |pred - target| over pixels where ``mask`` > 0 (all pixels when None).

    Parameters
    ----------
    pred, target : [B, P]
        Normalised fluxes.
    mask : [B, P], optional
        Pixel weights; only their sign is used (data / no data).
    """
    diff = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
    if mask is None:
        return diff.mean()
    m = (mask > 0).astype(jnp.float32)
    return (diff * m).sum() / jnp.maximum(m.sum(), 1.0)


def l1(a: Array, b: Array) -> Array:
    """Mean absolute difference of two latent codes (any shape)."""
    return jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)).mean()


def lsgan_generator(outputs: Sequence[Array]) -> Array:
    """Least-squares GAN loss of the generator: sum over scales of mean (D(fake) - 1)^2."""
    return sum(jnp.mean((o - 1.0) ** 2) for o in outputs)


def lsgan_discriminator(real: Sequence[Array], fake: Sequence[Array]) -> Array:
    """Least-squares GAN loss of a discriminator: sum over scales of
    mean D(fake)^2 + mean (D(real) - 1)^2."""
    return sum(jnp.mean(f**2) + jnp.mean((r - 1.0) ** 2) for r, f in zip(real, fake, strict=True))


def pixel_relative_residual(pred: Array, target: Array, weight: Array) -> Array:
    """(pred - target) / target per pixel [B, P] (the paper's Fig. 7 quantity); NaN where the
    input has no data (weight 0) or |target| <= 1e-3.

    Parameters
    ----------
    pred, target, weight : [B, P]
        Reconstruction, input, and input weights (0 = no data).
    """
    good = (weight > 0) & (jnp.abs(target) > 1e-3)
    return jnp.where(good, (pred - target) / jnp.where(good, target, 1.0), jnp.nan)


def relative_residual(
    pred: Array, target: Array, weight: Array, wave: Array, lo: float = 4000.0, hi: float = 5500.0
) -> Array:
    """Mean |pred - target| / target over lo-hi Å (paper Fig. 7), per spectrum.

    Parameters
    ----------
    pred, target, weight : [B, P]
        Reconstruction, input, and input weights (0 = no data, excluded).
    wave : [P]
        Wavelengths [Å].

    Returns
    -------
    [B] mean absolute relative residual of each spectrum (`pixel_relative_residual` over
    the window's pixels with data).
    """
    rel = pixel_relative_residual(pred, target, weight)
    sel = ((wave >= lo) & (wave <= hi))[None, :] & jnp.isfinite(rel)
    n = jnp.maximum(sel.sum(axis=1), 1).astype(jnp.float32)
    return jnp.where(sel, jnp.abs(rel), 0.0).sum(axis=1) / n
