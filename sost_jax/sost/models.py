"""The SOST networks, a 1-D MUNIT, and their config sections' defaults.

One domain pair is two auto-encoders (`sost_jax.sost.generator.AutoEncoder`: content
encoder, style encoder, MLP -> AdaIN decoder) and two discriminators
(`sost_jax.sost.discriminator.MultiScaleDiscriminator`), pure Flax modules built from the
blocks of `sost_jax.sost.layers`. Arrays are channels-last: spectra enter as ``[B, P]``
(normalised flux), feature maps are ``[B, L, C]``.

``MODEL_DEFAULTS`` and ``DIS_DEFAULTS`` are the ``model`` and ``dis`` config sections'
defaults (the paper's sizes); the geometries (``model.arch`` "reference" or "padded") and
the reference code's other choices are described in the generator's and the
discriminator's modules.
"""

from __future__ import annotations

from typing import Any

import jax

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


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))
