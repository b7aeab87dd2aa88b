"""The multi-scale discriminators of the SOST networks (one per domain).

`MultiScaleDiscriminator` judges spectra ``[B, P]`` at ``dis.n_scales`` resolutions; each
scale (`Discriminator`) is a stack of strided convolutions with LeakyReLU. Parameter count
at the paper's sizes: 2,072,643 (`tests/test_reference_port.py`). Two choices stay
configurable so the reference can be reproduced: ``dis.downsample`` "decimate" (the
reference's 1-wide average pool with stride 2, which drops every other pixel) or "avg3" (a
true 3-wide average pool), and the LeakyReLU slope (``dis.leaky_slope``: 0.1 in the
reference). ``dis.init`` "normal": N(0, 0.02) with zero biases; "reference": the
reference's (PyTorch's default biases).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from sost_jax.sost.layers import Conv1D, instance_norm

Array = jax.Array


def _avg_pool3(x: Array) -> Array:
    """3-wide average pool, stride 2, padding 1, padded pixels not counted; [B, L, C]."""
    ones = jnp.ones(x.shape[:2] + (1,), x.dtype)

    def pool(v: Array) -> Array:
        return jax.lax.reduce_window(
            v, 0.0, jax.lax.add, (1, 3, 1), (1, 2, 1), ((0, 0), (1, 1), (0, 0))
        )

    return pool(x) / pool(ones)


def _decimate(x: Array) -> Array:
    """Every other pixel, the first kept: the reference's 1-wide average pool of stride 2."""
    return x[:, ::2]


DOWNSAMPLERS = {"avg3": _avg_pool3, "decimate": _decimate}


class Discriminator(nn.Module):
    """One scale: strided convolutions with LeakyReLU (and instance norm after the first)."""

    dim: int
    n_layers: int
    pad_mode: str
    impl: str
    dtype: Any
    slope: float = 0.2
    scheme: str = "normal"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype, scheme=self.scheme)
        x = nn.leaky_relu(Conv1D(self.dim, 4, stride=2, padding=1, **common)(x), self.slope)
        dim = self.dim
        for _ in range(self.n_layers - 1):
            dim *= 2
            x = Conv1D(dim, 4, stride=2, padding=1, **common)(x)
            x = nn.leaky_relu(instance_norm(x), self.slope)
        return Conv1D(1, 3, padding=1, **common)(x).astype(jnp.float32)


class MultiScaleDiscriminator(nn.Module):
    """Discriminators at ``n_scales`` resolutions; spectra [B, P] -> list of [B, L_s, 1].

    Between scales the spectrum is down-sampled by ``dis.downsample``: "avg3" (a 3-wide
    average pool, stride 2) or "decimate" (every other pixel, the reference's).
    """

    config: ConfigDict

    @nn.compact
    def __call__(self, x: Array) -> list[Array]:
        d = self.config
        dtype = jnp.bfloat16 if d.dtype == "bfloat16" else jnp.float32
        down = DOWNSAMPLERS[d.downsample]
        x = x[..., None]
        outputs = []
        for _ in range(d.n_scales):
            scale = Discriminator(
                d.dim, d.n_layers, d.pad_mode, d.conv_impl, dtype, d.leaky_slope, d.init
            )
            outputs.append(scale(x))
            x = down(x)
        return outputs
