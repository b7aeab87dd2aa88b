"""A small SOST that trains on 2 CPU cores in about 10 minutes on the mock survey.

Width 16, stride-4 down-sampling (content code 64 x 300 at 4800 pixels), 2 residual blocks,
lighter discriminators; the paper's loss weights; a higher learning rate with linear decay.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    config.model.dim = 16
    config.model.down_stride = 4
    config.model.n_res = 2
    config.model.mlp_dim = 64
    config.dis.dim = 16
    config.train.batch_size = 8
    config.train.steps = 1200
    config.train.decay_start = 600
    config.train.lr = 5e-4
    config.train.eval_every = 200
    config.train.checkpoint_every = 200
    config.train.log_every = 20
    return config
