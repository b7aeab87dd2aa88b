"""The building blocks of the SOST networks: convolutions, normalisations, residual blocks.

Arrays are channels-last: feature maps are ``[B, L, C]`` (B spectra, L positions along the
spectrum, C channels). Convolution weights are initialised by a named scheme (`Conv1D`'s
``scheme``): "kaiming" (He-normal, zero biases: the generator's default), "normal" (N(0,
0.02), zero biases: the discriminators'), "reference" (N(0, 0.02) and PyTorch's default
biases, as the reference code) or "zeros".
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from sost_jax.errors import InputError

Array = jax.Array
EPS = 1e-5

#: He-normal: the generator's kernel initialiser ("kaiming").
GEN_INIT = nn.initializers.kaiming_normal()
_DIS_INIT = nn.initializers.normal(0.02)


def uniform_init(bound: float) -> Any:
    """U(-bound, bound): PyTorch's default initialiser of biases and linear weights."""

    def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def pad_length(x: Array, left: int, right: int, mode: str) -> Array:
    """Pad the length axis of ``x`` [B, L, C]; mode "reflect" or "zero"."""
    if left == 0 and right == 0:
        return x
    widths = ((0, 0), (left, right), (0, 0))
    return jnp.pad(x, widths, mode="reflect" if mode == "reflect" else "constant")


def _conv_inits(init: str, fan_in: int) -> tuple[Any, Any]:
    """(kernel init, bias init) of a convolution whose outputs each see ``fan_in`` inputs.

    "kaiming": He-normal kernel, zero bias; "normal": N(0, 0.02), zero bias; "reference":
    N(0, 0.02) and PyTorch's default bias U(+-1/sqrt(fan_in)); "zeros": both zero.
    """
    if init == "kaiming":
        return GEN_INIT, nn.initializers.zeros
    if init == "normal":
        return _DIS_INIT, nn.initializers.zeros
    if init == "reference":
        return _DIS_INIT, uniform_init(1.0 / math.sqrt(max(fan_in, 1)))
    if init == "zeros":
        return nn.initializers.zeros, nn.initializers.zeros
    raise InputError(f"unknown initialisation {init!r}")


class Conv1D(nn.Module):
    """1-D convolution, channels-last, with explicit padding.

    "xla" calls ``lax.conv_general_dilated`` (the faster on CPU, forward and backward);
    "matmul" sums ``kernel_size`` matrix products of strided views of the input. Both share
    the kernel layout [K, C_in, C_out] and agree to float32 rounding (`tests/test_models.py`).
    ``scheme``: the initialisation, see `_conv_inits`.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    pad_mode: str = "reflect"
    use_bias: bool = True
    impl: str = "xla"
    dtype: Any = jnp.float32
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c_in = x.shape[-1]
        kernel_init, bias_init = _conv_inits(self.scheme, c_in * self.kernel_size)
        kernel = self.param("kernel", kernel_init, (self.kernel_size, c_in, self.features))
        x = pad_length(x, self.padding, self.padding, self.pad_mode).astype(self.dtype)
        kernel = kernel.astype(self.dtype)
        l_out = (x.shape[1] - self.kernel_size) // self.stride + 1
        if self.impl == "xla":
            y = jax.lax.conv_general_dilated(
                x, kernel, (self.stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
            )
        else:
            y = sum(
                x[:, k : k + self.stride * (l_out - 1) + 1 : self.stride] @ kernel[k]
                for k in range(self.kernel_size)
            )
        if self.use_bias:
            bias = self.param("bias", bias_init, (self.features,)).astype(self.dtype)
            y = y + bias[None, None, :]
        return y


class ConvTranspose1D(nn.Module):
    """Transposed 1-D convolution (up-sampling by ``stride``), PyTorch's size rule.

    Output length (L - 1) stride - 2 padding + kernel_size. Computed as one matrix product
    [B, L, C_in] @ [C_in, K C_out] followed by an overlap-add of the K taps (XLA's own
    transposed convolution, an input-dilated convolution, ran 10x slower on CPU, forward
    and backward). The kernel [K, C_in, C_out] is PyTorch's weight (C_in, C_out, K)
    transposed; ``scheme`` as `Conv1D` (PyTorch's bias bound uses C_out K inputs here).
    """

    features: int
    kernel_size: int = 4
    stride: int = 2
    padding: int = 1
    dtype: Any = jnp.float32
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        b, length, c_in = x.shape
        k, s, c = self.kernel_size, self.stride, self.features
        kernel_init, bias_init = _conv_inits(self.scheme, c * k)
        kernel = self.param("kernel", kernel_init, (k, c_in, c)).astype(self.dtype)
        bias = self.param("bias", bias_init, (c,)).astype(self.dtype)
        taps = jnp.einsum("blc,kcd->blkd", x.astype(self.dtype), kernel)  # [B, L, K, C]
        full = (length - 1) * s + k
        out = jnp.zeros((b, full, c), self.dtype)
        for j in range(k):
            out = out.at[:, j : j + s * (length - 1) + 1 : s].add(taps[:, :, j])
        return out[:, self.padding : full - self.padding] + bias[None, None, :]


def instance_norm(x: Array) -> Array:
    """Normalise each channel of each spectrum over length; x [B, L, C] (no affine)."""
    x32 = x.astype(jnp.float32)
    mean = x32.mean(axis=1, keepdims=True)
    var = x32.var(axis=1, keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + EPS)).astype(x.dtype)


def adain(x: Array, beta: Array, gamma: Array) -> Array:
    """Adaptive instance norm: instance_norm(x) * gamma + beta.

    Parameters
    ----------
    x : [B, L, C]
    beta, gamma : [B, C]
        Per-spectrum shift and scale (from the style MLP).
    """
    return instance_norm(x) * gamma[:, None, :].astype(x.dtype) + beta[:, None, :].astype(x.dtype)


class LayerNorm1D(nn.Module):
    """MUNIT's layer norm: (x - mean) / (std + eps) over (length, channels) of each spectrum,
    std with Bessel's correction as PyTorch's ``Tensor.std``, then a per-channel affine
    (scale drawn U(0, 1), bias 0)."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c = x.shape[-1]
        gamma = self.param("scale", nn.initializers.uniform(1.0), (c,))
        beta = self.param("bias", nn.initializers.zeros, (c,))
        x32 = x.astype(jnp.float32)
        mean = x32.mean(axis=(1, 2), keepdims=True)
        std = jnp.sqrt(x32.var(axis=(1, 2), keepdims=True, ddof=1))
        y = (x32 - mean) / (std + EPS) * gamma[None, None, :] + beta[None, None, :]
        return y.astype(x.dtype)


class ResBlock(nn.Module):
    """x + [conv, norm, ReLU, conv, norm]; norm is instance norm, or AdaIN when given params.

    ``ada`` [B, 4 C] holds (beta1, gamma1, beta2, gamma2) for the two AdaIN layers.
    """

    kernel_size: int
    pad_mode: str
    impl: str
    dtype: Any
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, x: Array, ada: Array | None = None) -> Array:
        c = x.shape[-1]
        conv = dict(
            features=c,
            kernel_size=self.kernel_size,
            padding=self.kernel_size // 2,
            pad_mode=self.pad_mode,
            impl=self.impl,
            dtype=self.dtype,
            scheme=self.scheme,
        )
        y = Conv1D(**conv)(x)
        y = instance_norm(y) if ada is None else adain(y, ada[:, :c], ada[:, c : 2 * c])
        y = nn.relu(y)
        y = Conv1D(**conv)(y)
        y = instance_norm(y) if ada is None else adain(y, ada[:, 2 * c : 3 * c], ada[:, 3 * c :])
        return x + y
