"""The SOST networks as pure Flax modules: a 1-D MUNIT.

One domain pair is two `AutoEncoder` s (content encoder, style encoder, MLP -> AdaIN
decoder) and two `MultiScaleDiscriminator` s. Arrays are channels-last: spectra enter as
``[B, P]`` (normalised flux), feature maps are ``[B, L, C]``.

Sizes (paper, Table A.1 of Yan et al.): width 64, 2 down-samplings, 3 residual blocks of
kernel 7, style code 8, MLP 256; 4800 pixels give a content code of 256 channels x 1200
(stride-2 down-sampling). Parameter counts at those settings: encoders 3,208,456, decoder
with its MLP 3,776,513, multi-scale discriminator 2,072,643 (`tests/test_models.py`).

Two departures from the reference PyTorch code, both deliberate: AdaIN parameters are passed
to the decoder as an argument (the reference assigned them onto modules at run time), and
the discriminator's down-sampling between scales is a true 3-wide average pool with stride
2 (the reference's 1-wide pool dropped every other pixel).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

Array = jax.Array
EPS = 1e-5

_GEN_INIT = nn.initializers.kaiming_normal()
_DIS_INIT = nn.initializers.normal(0.02)


def _pad(x: Array, left: int, right: int, mode: str) -> Array:
    """Pad the length axis of ``x`` [B, L, C]; mode "reflect" or "zero"."""
    if left == 0 and right == 0:
        return x
    widths = ((0, 0), (left, right), (0, 0))
    return jnp.pad(x, widths, mode="reflect" if mode == "reflect" else "constant")


class Conv1D(nn.Module):
    """1-D convolution, channels-last, with explicit padding.

    "xla" calls ``lax.conv_general_dilated`` (the faster on CPU, forward and backward);
    "matmul" sums ``kernel_size`` matrix products of strided views of the input. Both share
    the kernel layout [K, C_in, C_out] and agree to float32 rounding (`tests/test_models.py`).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    pad_mode: str = "reflect"
    use_bias: bool = True
    impl: str = "xla"
    dtype: Any = jnp.float32
    kernel_init: Any = _GEN_INIT

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c_in = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (self.kernel_size, c_in, self.features))
        x = _pad(x, self.padding, self.padding, self.pad_mode).astype(self.dtype)
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
            bias = self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
            y = y + bias[None, None, :]
        return y


class ConvTranspose1D(nn.Module):
    """Transposed 1-D convolution (up-sampling by ``stride``), PyTorch's size rule.

    Output length (L - 1) stride - 2 padding + kernel_size. Computed as one matrix product
    [B, L, C_in] @ [C_in, K C_out] followed by an overlap-add of the K taps (XLA's own
    transposed convolution, an input-dilated convolution, ran 10x slower on CPU, forward
    and backward).
    """

    features: int
    kernel_size: int = 4
    stride: int = 2
    padding: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        b, length, c_in = x.shape
        k, s, c = self.kernel_size, self.stride, self.features
        kernel = self.param("kernel", _GEN_INIT, (k, c_in, c)).astype(self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (c,)).astype(self.dtype)
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
    """Normalise over (length, channels) of each spectrum, then a per-channel affine."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c = x.shape[-1]
        gamma = self.param("scale", nn.initializers.uniform(1.0), (c,))
        beta = self.param("bias", nn.initializers.zeros, (c,))
        x32 = x.astype(jnp.float32)
        mean = x32.mean(axis=(1, 2), keepdims=True)
        var = x32.var(axis=(1, 2), keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + EPS) * gamma[None, None, :] + beta[None, None, :]
        return y.astype(x.dtype)


class ResBlock(nn.Module):
    """x + [conv, norm, ReLU, conv, norm]; norm is instance norm, or AdaIN when given params.

    ``ada`` [B, 4 C] holds (beta1, gamma1, beta2, gamma2) for the two AdaIN layers.
    """

    kernel_size: int
    pad_mode: str
    impl: str
    dtype: Any

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
        )
        y = Conv1D(**conv)(x)
        y = instance_norm(y) if ada is None else adain(y, ada[:, :c], ada[:, c : 2 * c])
        y = nn.relu(y)
        y = Conv1D(**conv)(y)
        y = instance_norm(y) if ada is None else adain(y, ada[:, 2 * c : 3 * c], ada[:, 3 * c :])
        return x + y


class ContentEncoder(nn.Module):
    """[B, P, 1] -> content code [B, P / stride^n_down, dim 2^n_down]."""

    dim: int
    n_down: int
    n_res: int
    kernel_res: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype)
        x = nn.relu(instance_norm(Conv1D(self.dim, 7, padding=3, **common)(x)))
        dim = self.dim
        for _ in range(self.n_down):
            dim *= 2
            k = 2 * self.stride
            x = Conv1D(dim, k, stride=self.stride, padding=(k - self.stride) // 2, **common)(x)
            x = nn.relu(instance_norm(x))
        for _ in range(self.n_res):
            x = ResBlock(self.kernel_res, **common)(x)
        return x


class StyleEncoder(nn.Module):
    """[B, P, 1] -> style code [B, style_dim] (strided convolutions, global average pool)."""

    dim: int
    n_down: int
    style_dim: int
    kernel: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype)
        x = nn.relu(Conv1D(self.dim, 7, padding=3, **common)(x))
        dim = self.dim
        for _ in range(self.n_down):
            dim *= 2
            x = Conv1D(dim, self.kernel, stride=self.stride, padding=self.kernel // 2, **common)(x)
            x = nn.relu(x)
        x = x.astype(jnp.float32).mean(axis=1, keepdims=True)
        return Conv1D(self.style_dim, 1, impl=self.impl)(x)[:, 0, :]


class MLP(nn.Module):
    """Style code [B, S] -> all AdaIN parameters of the decoder [B, n_out]."""

    hidden: int
    n_out: int
    n_layers: int = 3

    @nn.compact
    def __call__(self, s: Array) -> Array:
        for _ in range(self.n_layers - 1):
            s = nn.relu(nn.Dense(self.hidden, kernel_init=_GEN_INIT)(s))
        return nn.Dense(self.n_out, kernel_init=_GEN_INIT)(s)


class Decoder(nn.Module):
    """Content code [B, L, C] + AdaIN params [B, 4 C n_res] -> spectrum [B, L stride^n_up, 1].

    With ``zero_out`` the last convolution starts at zero, so the decoder's first output is
    0 everywhere (a change decoder starts as "no change").
    """

    n_up: int
    n_res: int
    kernel_res: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any
    zero_out: bool = False

    @nn.compact
    def __call__(self, c: Array, ada: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype)
        dim = c.shape[-1]
        x = c
        for i in range(self.n_res):
            x = ResBlock(self.kernel_res, **common)(x, ada[:, 4 * dim * i : 4 * dim * (i + 1)])
        for _ in range(self.n_up):
            dim //= 2
            k = 2 * self.stride
            x = ConvTranspose1D(dim, k, self.stride, (k - self.stride) // 2, dtype=self.dtype)(x)
            x = nn.relu(LayerNorm1D()(x))
        init = nn.initializers.zeros if self.zero_out else _GEN_INIT
        return Conv1D(1, 7, padding=3, **common, kernel_init=init)(x)


def _spectra(y: Array, n_pixels: int | None) -> Array:
    """Decoder output [B, L, 1] -> float32 spectra [B, n_pixels] (the padding cropped)."""
    y = y[..., 0].astype(jnp.float32)
    return y if n_pixels is None else y[:, :n_pixels]


class AutoEncoder(nn.Module):
    """One domain's generator: ``encode`` spectra to (content, style), ``decode`` back.

    Attributes
    ----------
    config : ConfigDict
        The ``model`` section: dim, n_down, n_res, kernel_res, style_dim, mlp_dim,
        down_stride, style_kernel, pad_mode, conv_impl, dtype.
    """

    config: ConfigDict

    def setup(self) -> None:
        m = self.config
        dtype = jnp.bfloat16 if m.dtype == "bfloat16" else jnp.float32
        common = dict(pad_mode=m.pad_mode, impl=m.conv_impl, dtype=dtype)
        self.content = ContentEncoder(
            m.dim, m.n_down, m.n_res, m.kernel_res, m.down_stride, **common
        )
        self.style = StyleEncoder(
            m.dim, m.n_down, m.style_dim, m.style_kernel, m.down_stride, **common
        )
        content_dim = m.dim * 2**m.n_down
        self.mlp = MLP(m.mlp_dim, 4 * content_dim * m.n_res)
        decoder = (m.n_down, m.n_res, m.kernel_res, m.down_stride)
        self.decoder = Decoder(*decoder, **common)
        if m.translation == "change":
            self.change_mlp = MLP(m.mlp_dim, 4 * content_dim * m.n_res)
            self.change_decoder = Decoder(*decoder, **common, zero_out=True)
            self.change_position = nn.Dense(content_dim, kernel_init=_GEN_INIT)

    def _factor(self) -> int:
        return self.config.down_stride**self.config.n_down

    def encode(self, x: Array) -> tuple[Array, Array]:
        """Spectra [B, P] -> content [B, L, C] and style [B, style_dim]."""
        x = x[..., None]
        pad = (-x.shape[1]) % self._factor()
        x = _pad(x, 0, pad, "reflect")
        return self.content(x), self.style(x)

    def decode(self, content: Array, style: Array, n_pixels: int | None = None) -> Array:
        """Content [B, L, C] and style [B, style_dim] -> spectra [B, n_pixels] (float32)."""
        return _spectra(self.decoder(content, self.mlp(style.astype(jnp.float32))), n_pixels)

    def decode_change(self, content: Array, style: Array, n_pixels: int | None = None) -> Array:
        """Content [B, L, C] of another domain's spectrum and a style [B, style_dim] of this
        domain -> the change [B, n_pixels] that takes the spectrum into this domain (model
        ``translation`` "change" only; zero before training).

        The change decoder also sees where along the spectrum it is (`position_features`,
        projected onto the content channels): part of the gap between two domains sits at
        fixed wavelengths (tellurics, lines the models lack), which convolutions alone
        cannot place.
        """
        where = self.change_position(position_features(content.shape[1]))
        content = content + where[None].astype(content.dtype)
        ada = self.change_mlp(style.astype(jnp.float32))
        return _spectra(self.change_decoder(content, ada), n_pixels)

    def __call__(self, x: Array) -> Array:
        """In-domain reconstruction [B, P] -> [B, P] (used to initialise all parameters)."""
        content, style = self.encode(x)
        out = self.decode(content, style, x.shape[1])
        if self.config.translation == "change":
            out = out + 0.0 * self.decode_change(content, style, x.shape[1])
        return out


def position_features(length: int) -> Array:
    """Fixed sinusoids of the position along a spectrum: [length, 2 n_freq] float32 of
    sin and cos of 2 pi f t, t in [0, 1), for f = 1, 2, 4, ... cycles up to length / 4 (the
    shortest period four positions)."""
    n_freq = max(1, int(math.floor(math.log2(max(length, 4) / 4))) + 1)
    t = jnp.arange(length, dtype=jnp.float32) / length
    f = 2.0 ** jnp.arange(n_freq, dtype=jnp.float32)
    phase = 2.0 * jnp.pi * t[:, None] * f[None, :]
    return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)], axis=1)


def _avg_pool3(x: Array) -> Array:
    """3-wide average pool, stride 2, padding 1, padded pixels not counted; [B, L, C]."""
    ones = jnp.ones(x.shape[:2] + (1,), x.dtype)

    def pool(v: Array) -> Array:
        return jax.lax.reduce_window(
            v, 0.0, jax.lax.add, (1, 3, 1), (1, 2, 1), ((0, 0), (1, 1), (0, 0))
        )

    return pool(x) / pool(ones)


class Discriminator(nn.Module):
    """One scale: strided convolutions with LeakyReLU (and instance norm after the first)."""

    dim: int
    n_layers: int
    pad_mode: str
    impl: str
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(
            pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype, kernel_init=_DIS_INIT
        )
        x = nn.leaky_relu(Conv1D(self.dim, 4, stride=2, padding=1, **common)(x), 0.2)
        dim = self.dim
        for _ in range(self.n_layers - 1):
            dim *= 2
            x = Conv1D(dim, 4, stride=2, padding=1, **common)(x)
            x = nn.leaky_relu(instance_norm(x), 0.2)
        return Conv1D(1, 3, padding=1, **common)(x).astype(jnp.float32)


class MultiScaleDiscriminator(nn.Module):
    """Discriminators at ``n_scales`` resolutions; spectra [B, P] -> list of [B, L_s, 1]."""

    config: ConfigDict

    @nn.compact
    def __call__(self, x: Array) -> list[Array]:
        d = self.config
        dtype = jnp.bfloat16 if d.dtype == "bfloat16" else jnp.float32
        x = x[..., None]
        outputs = []
        for _ in range(d.n_scales):
            outputs.append(Discriminator(d.dim, d.n_layers, d.pad_mode, d.conv_impl, dtype)(x))
            x = _avg_pool3(x)
        return outputs


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))
