"""The generator of one domain: content and style encoders, the style MLP, the AdaIN decoder.

`AutoEncoder` encodes spectra ``[B, P]`` (normalised flux) into a content code ``[B, L, C]``
and a style code ``[B, style_dim]``, and decodes them back; the style MLP turns a style code
into the decoder's AdaIN parameters (always passed to the decoder as an argument: the
reference assigned them onto modules at run time).

Sizes (paper, Table A.1 of Yan et al.): width 64, 2 down-samplings, 3 residual blocks of
kernel 7, style code 8, MLP 256. Parameter counts at those settings: encoders 3,208,456,
decoder with its MLP 3,776,513, both for ``arch`` "reference" and "padded"
(`tests/test_reference_port.py` checks them against counts taken from the reference code's
own modules).

Two geometries (``model.arch``):

- ``"reference"``: the public PyTorch code's network, layer for layer. Its encoder
  convolutions are unpadded, so 4800 pixels give a content code of 256 channels x 1197
  (4800 - 6 = 4794, then (L - 4) // 2 + 1 twice); the style encoder starts with a kernel-7,
  stride-4 convolution followed by instance norm, then two kernel-7 stride-2 convolutions
  that double the width (and further ones that keep it); the decoder's transposed
  convolutions are uncropped and its output layer is a kernel-7 transposed convolution, which
  brings 1197 back to exactly 4800. (The paper's text gives the content code as 256 x 298,
  which no 2-down-sampling geometry of 4800 pixels gives; we follow the code.) The residual
  blocks pad by ``pad_mode`` (the reference: zeros).
- ``"padded"`` (sost-jax's): every convolution padded so the content code is P / 4
  (256 x 1200 at 4800 pixels), a style encoder of stride-``down_stride`` convolutions
  without normalisation.

``model.init`` "reference" initialises like the reference (convolution weights N(0, 0.02),
biases, linear layers and LayerNorm scales at PyTorch's defaults); "kaiming" is He-normal.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from sost_jax.errors import InputError
from sost_jax.sost.layers import (
    GEN_INIT,
    Conv1D,
    ConvTranspose1D,
    LayerNorm1D,
    ResBlock,
    instance_norm,
    pad_length,
    uniform_init,
)

Array = jax.Array


class ContentEncoder(nn.Module):
    """[B, P, 1] -> content code [B, L, dim 2^n_down]: L = P / stride^n_down ("padded"), or
    the reference's unpadded lengths (1197 at 4800 pixels)."""

    dim: int
    n_down: int
    n_res: int
    kernel_res: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any
    arch: str = "padded"
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype, scheme=self.scheme)
        padded = self.arch == "padded"
        x = nn.relu(instance_norm(Conv1D(self.dim, 7, padding=3 if padded else 0, **common)(x)))
        dim = self.dim
        for _ in range(self.n_down):
            dim *= 2
            k = 2 * self.stride
            pad = (k - self.stride) // 2 if padded else 0
            x = Conv1D(dim, k, stride=self.stride, padding=pad, **common)(x)
            x = nn.relu(instance_norm(x))
        for _ in range(self.n_res):
            x = ResBlock(self.kernel_res, **common)(x)
        return x


class StyleEncoder(nn.Module):
    """[B, P, 1] -> style code [B, style_dim] (strided convolutions, global average pool).

    "padded": a kernel-7 convolution, then ``n_down`` convolutions of ``kernel`` and
    ``stride`` that double the width, all padded, no normalisation. "reference": unpadded; a
    kernel-7 stride-4 convolution with instance norm, two width-doubling convolutions of
    ``kernel`` and ``stride``, then ``n_down`` - 2 that keep the width.
    """

    dim: int
    n_down: int
    style_dim: int
    kernel: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any
    arch: str = "padded"
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype, scheme=self.scheme)
        dim = self.dim
        if self.arch == "padded":
            x = nn.relu(Conv1D(dim, 7, padding=3, **common)(x))
            widths = [dim * 2 ** (i + 1) for i in range(self.n_down)]
            pad = self.kernel // 2
        else:
            x = nn.relu(instance_norm(Conv1D(dim, 7, stride=4, **common)(x)))
            widths = [dim * 2, dim * 4] + [dim * 4] * max(self.n_down - 2, 0)
            pad = 0
        for width in widths:
            x = nn.relu(Conv1D(width, self.kernel, stride=self.stride, padding=pad, **common)(x))
        x = x.astype(jnp.float32).mean(axis=1, keepdims=True)
        return Conv1D(self.style_dim, 1, impl=self.impl, scheme=self.scheme)(x)[:, 0, :]


class MLP(nn.Module):
    """Style code [B, S] -> all AdaIN parameters of the decoder [B, n_out].

    ``scheme`` "reference": PyTorch's default for linear layers (weights and biases
    U(+-1/sqrt(fan_in))), so the AdaIN scales and shifts start small; "kaiming": He-normal
    weights, zero biases.
    """

    hidden: int
    n_out: int
    n_layers: int = 3
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, s: Array) -> Array:
        for i in range(self.n_layers):
            features = self.n_out if i == self.n_layers - 1 else self.hidden
            if self.scheme == "reference":
                bound = 1.0 / math.sqrt(s.shape[-1])
                inits = dict(kernel_init=uniform_init(bound), bias_init=uniform_init(bound))
            else:
                inits = dict(kernel_init=GEN_INIT)
            s = nn.Dense(features, **inits)(s)
            if i < self.n_layers - 1:
                s = nn.relu(s)
        return s


class Decoder(nn.Module):
    """Content code [B, L, C] + AdaIN params [B, 4 C n_res] -> spectrum [B, P', 1].

    "padded": transposed convolutions cropped to stride x length, a padded kernel-7 output
    convolution (P' = L stride^n_up). "reference": uncropped transposed convolutions and a
    kernel-7 transposed output convolution (1197 -> 4800). With ``zero_out`` the last layer
    starts at zero, so the decoder's first output is 0 everywhere (a change decoder starts
    as "no change").
    """

    n_up: int
    n_res: int
    kernel_res: int
    stride: int
    pad_mode: str
    impl: str
    dtype: Any
    zero_out: bool = False
    arch: str = "padded"
    scheme: str = "kaiming"

    @nn.compact
    def __call__(self, c: Array, ada: Array) -> Array:
        common = dict(pad_mode=self.pad_mode, impl=self.impl, dtype=self.dtype, scheme=self.scheme)
        padded = self.arch == "padded"
        dim = c.shape[-1]
        x = c
        for i in range(self.n_res):
            x = ResBlock(self.kernel_res, **common)(x, ada[:, 4 * dim * i : 4 * dim * (i + 1)])
        for _ in range(self.n_up):
            dim //= 2
            k = 2 * self.stride
            pad = (k - self.stride) // 2 if padded else 0
            x = ConvTranspose1D(dim, k, self.stride, pad, dtype=self.dtype, scheme=self.scheme)(x)
            x = nn.relu(LayerNorm1D()(x))
        init = "zeros" if self.zero_out else self.scheme
        if padded:
            return Conv1D(1, 7, padding=3, **{**common, "scheme": init})(x)
        return ConvTranspose1D(1, 7, 1, 0, dtype=self.dtype, scheme=init)(x)


def _spectra(y: Array, n_pixels: int | None) -> Array:
    """Decoder output [B, L, 1] -> float32 spectra [B, n_pixels] (the padding cropped)."""
    y = y[..., 0].astype(jnp.float32)
    return y if n_pixels is None else y[:, :n_pixels]


def round_trip_length(n_pixels: int, n_down: int, stride: int, arch: str) -> int:
    """Decoded length of an input of ``n_pixels`` after encoding (0 when it vanishes)."""
    k = 2 * stride
    if arch == "padded":
        length = n_pixels
        for _ in range(n_down):
            length = (length + 2 * ((k - stride) // 2) - k) // stride + 1
        return length * stride**n_down
    length = n_pixels - 6
    for _ in range(n_down):
        length = (length - k) // stride + 1
        if length < 1:
            return 0
    for _ in range(n_down):
        length = (length - 1) * stride + k
    return length + 6


def input_length(n_pixels: int, n_down: int, stride: int, arch: str) -> int:
    """The shortest length >= ``n_pixels`` that encodes and decodes back to itself; spectra
    are reflect-padded to it before encoding and cropped back after decoding."""
    for length in range(n_pixels, n_pixels + 4 * stride ** (n_down + 1) + 1):
        if round_trip_length(length, n_down, stride, arch) == length:
            return length
    raise InputError(
        f"no input length from {n_pixels} pixels round-trips through {n_down} down-samplings "
        f"of stride {stride} ({arch})"
    )


class AutoEncoder(nn.Module):
    """One domain's generator: ``encode`` spectra to (content, style), ``decode`` back.

    Attributes
    ----------
    config : ConfigDict
        The ``model`` section: arch, init, dim, n_down, n_res, kernel_res, style_dim,
        mlp_dim, down_stride, style_kernel, pad_mode, conv_impl, dtype, translation.
    """

    config: ConfigDict

    def setup(self) -> None:
        m = self.config
        dtype = jnp.bfloat16 if m.dtype == "bfloat16" else jnp.float32
        common = dict(pad_mode=m.pad_mode, impl=m.conv_impl, dtype=dtype)
        shape = dict(arch=m.arch, scheme=m.init)
        self.content = ContentEncoder(
            m.dim, m.n_down, m.n_res, m.kernel_res, m.down_stride, **common, **shape
        )
        self.style = StyleEncoder(
            m.dim, m.n_down, m.style_dim, m.style_kernel, m.down_stride, **common, **shape
        )
        content_dim = m.dim * 2**m.n_down
        self.mlp = MLP(m.mlp_dim, 4 * content_dim * m.n_res, scheme=m.init)
        decoder = (m.n_down, m.n_res, m.kernel_res, m.down_stride)
        self.decoder = Decoder(*decoder, **common, **shape)
        if m.translation == "change":
            self.change_mlp = MLP(m.mlp_dim, 4 * content_dim * m.n_res, scheme=m.init)
            self.change_decoder = Decoder(*decoder, **common, zero_out=True, **shape)
            self.change_position = nn.Dense(content_dim, kernel_init=GEN_INIT)

    def encode(self, x: Array) -> tuple[Array, Array]:
        """Spectra [B, P] -> content [B, L, C] and style [B, style_dim]."""
        m = self.config
        x = x[..., None]
        pad = input_length(x.shape[1], m.n_down, m.down_stride, m.arch) - x.shape[1]
        x = pad_length(x, 0, pad, "reflect")
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
