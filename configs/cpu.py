"""A small SOST that trains on 2 CPU cores in about 10 minutes on the mock survey.

Width 16 (content code 64 x 1200 at 4800 pixels), 2 residual blocks, lighter
discriminators; the paper's loss weights; a 10x higher learning rate than the paper's, with
linear decay over the second half. About 0.8 s per step on 2 cores.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    config.model.dim = 16
    config.model.n_res = 2
    config.model.mlp_dim = 64
    config.dis.dim = 16
    config.train.batch_size = 8
    config.train.steps = 700
    config.train.decay_start = 350
    config.train.lr = 1e-3
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.train.log_every = 20
    return config
