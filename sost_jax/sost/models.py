"""The SOST networks, a 1-D MUNIT: where each part lives, and their size.

One domain pair is two auto-encoders (`sost_jax.sost.generator.AutoEncoder`: content
encoder, style encoder, MLP -> AdaIN decoder) and two discriminators
(`sost_jax.sost.discriminator.MultiScaleDiscriminator`), pure Flax modules built from the
blocks of `sost_jax.sost.layers`. Arrays are channels-last: spectra enter as ``[B, P]``
(normalised flux), feature maps are ``[B, L, C]``.

Their settings, the ``model`` and ``dis`` config sections, are `sost_jax.sost.settings`'
`ModelSettings` and `DisSettings` (the paper's sizes by default); the geometries
(``model.arch`` "reference" or "padded") and the reference code's other choices are
described in the generator's and the discriminator's modules.
"""

from __future__ import annotations

from typing import Any

import jax


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))
