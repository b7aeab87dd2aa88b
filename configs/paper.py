"""The published SOST settings (Yan et al.): width 64, 2 down-samplings, 3 residual blocks,
style 8, 4800 pixels, batch 8, Adam 1e-4 (0.5, 0.999), loss weights GAN 1, id 10,
content 1, style 1, no cycle term.

Set the two domains' prepared stores, e.g.
``--set train.synthetic_store=stores/kurucz --set train.observed_store=stores/lamost``.
The number of iterations is not given in the paper; 200k with linear decay from 100k is
our choice.
"""

from sost_jax.config import default_config


def get_config():
    return default_config()
