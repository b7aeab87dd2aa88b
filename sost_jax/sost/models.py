"""The SOST networks as pure Flax modules: a 1-D MUNIT.

One domain pair is two `AutoEncoder` s (content encoder, style encoder, MLP -> AdaIN
decoder) and two `MultiScaleDiscriminator` s. Arrays are channels-last: spectra enter as
``[B, P]`` (normalised flux), feature maps are ``[B, L, C]``.

Sizes (paper, Table A.1 of Yan et al.): width 64, 2 down-samplings, 3 residual blocks of
kernel 7, style code 8, MLP 256. Parameter counts at those settings: encoders 3,208,456,
decoder with its MLP 3,776,513, multi-scale discriminator 2,072,643, both for ``arch``
"reference" and "padded" (`tests/test_reference_port.py` checks them against counts taken
from the reference code's own modules).

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

Two further choices stay configurable so the reference can be reproduced:
``dis.downsample`` "decimate" (the reference's 1-wide average pool with stride 2, which
drops every other pixel) or "avg3" (a true 3-wide average pool), and the LeakyReLU slope
of the discriminators (``dis.leaky_slope``: 0.1 in the reference). AdaIN parameters are
always passed to the decoder as an argument (the reference assigned them onto modules at
run time). ``model.init`` / ``dis.init`` "reference" initialise like the reference
(convolution weights N(0, 0.02), biases, linear layers and LayerNorm scales at PyTorch's
defaults); otherwise the generator is He-normal (``model.init`` "kaiming") and the
discriminators N(0, 0.02) with zero biases (``dis.init`` "normal").
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from sost_jax.errors import InputError

Array = jax.Array
EPS = 1e-5

_GEN_INIT = nn.initializers.kaiming_normal()
_DIS_INIT = nn.initializers.normal(0.02)


#: The ``model`` config section's defaults (the generator: both auto-encoders), the paper's
#: sizes (Yan et al., Table A.1).
MODEL_DEFAULTS: dict[str, Any] = {
    # geometry: "padded" (sost-jax: padded convolutions, content code P / 4) or
    # "reference" (the public PyTorch code's unpadded network, 256 x 1197 at 4800
    # pixels, stride-4 style encoder entry); see sost_jax.sost.models
    "arch": "padded",
    # "kaiming" (He-normal convolutions and MLP, zero biases) or "reference"
    # (convolutions N(0, 0.02), PyTorch's default biases and MLP: small AdaIN params)
    "init": "kaiming",
    "dim": 64,  # channels after the first convolution
    "n_down": 2,  # down-samplings in the encoders (= up-samplings in the decoder)
    "down_stride": 2,  # stride of each down-sampling
    "n_res": 3,  # residual blocks in the content encoder and the decoder
    "kernel_res": 7,  # kernel of the residual blocks
    "style_kernel": 7,  # kernel of the style encoder's strided convolutions
    "style_dim": 8,  # style code length
    "mlp_dim": 256,  # hidden width of the style -> AdaIN MLP
    "pad_mode": "reflect",  # "reflect" or "zero"
    "conv_impl": "xla",  # "xla" (lax.conv, faster on CPU) or "matmul"
    "dtype": "float32",  # compute dtype: "float32" or "bfloat16" (params stay f32)
    # translation a -> b: "direct" (the paper's: dec_b(content_a, style)) or
    # "change" (x_a + change_b(content_a, style): a second decoder per domain, zero
    # at start and told the position along the spectrum, draws only the change)
    "translation": "direct",
}
#: The ``dis`` config section's defaults (the multi-scale discriminators).
DIS_DEFAULTS: dict[str, Any] = {
    "dim": 64,
    "n_layers": 4,
    "n_scales": 3,
    "leaky_slope": 0.2,  # the reference: 0.1
    # between scales: "avg3" (3-wide average pool, stride 2) or "decimate" (every
    # other pixel: the reference's 1-wide average pool)
    "downsample": "avg3",
    "init": "normal",  # "normal" (N(0, 0.02), zero biases) or "reference"
    "pad_mode": "reflect",
    "conv_impl": "xla",
    "dtype": "float32",
}


def _uniform(bound: float) -> Any:
    """U(-bound, bound): PyTorch's default initialiser of biases and linear weights."""

    def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _pad(x: Array, left: int, right: int, mode: str) -> Array:
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
        return _GEN_INIT, nn.initializers.zeros
    if init == "normal":
        return _DIS_INIT, nn.initializers.zeros
    if init == "reference":
        return _DIS_INIT, _uniform(1.0 / math.sqrt(max(fan_in, 1)))
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
                inits = dict(kernel_init=_uniform(bound), bias_init=_uniform(bound))
            else:
                inits = dict(kernel_init=_GEN_INIT)
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
            self.change_position = nn.Dense(content_dim, kernel_init=_GEN_INIT)

    def encode(self, x: Array) -> tuple[Array, Array]:
        """Spectra [B, P] -> content [B, L, C] and style [B, style_dim]."""
        m = self.config
        x = x[..., None]
        pad = input_length(x.shape[1], m.n_down, m.down_stride, m.arch) - x.shape[1]
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


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))
