"""The loss weights of the reference PyTorch code instead of the paper's:
id 5, content 20, style 1, cycle 1 (everything else as configs/paper.py)."""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    config.loss.recon_x = 5.0
    config.loss.recon_c = 20.0
    config.loss.recon_s = 1.0
    config.loss.cycle = 1.0
    return config
