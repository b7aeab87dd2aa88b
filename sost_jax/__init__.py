"""sost-jax: Synthetic-to-Observed Spectral Translation in JAX/Flax.

Stages, one module each: ``io`` (readers), ``preprocess`` (shift, resample, degrade,
normalise), ``store`` (prepared on-disk datasets), ``prepare`` (files -> store), ``mock``
(the embedded mock survey), ``plots``.
"""

__version__ = "0.1.0"
