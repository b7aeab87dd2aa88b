"""A small SOST that trains on 2 CPU cores in about 10 minutes on the mock survey.

Width 16 (content code 64 x 1200 at 4800 pixels), 2 residual blocks; trained as paired
SOST (synthetic partners at the observed stars' labels, a position-aware change decoder,
reconstruction and paired losses); a 10x higher learning rate than the paper's, with linear
decay over the second half. The settings live in `sost_jax.config.cpu_config` (the demo's
defaults), which says how to train the paper's formulation instead.
"""

from sost_jax.config import cpu_config


def get_config():
    return cpu_config()
