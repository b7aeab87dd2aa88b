"""A very small network on a coarse grid, for tests (seconds per run on a CPU)."""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    config.preprocess.grid_start = 4000.0
    config.preprocess.grid_stop = 5596.0
    config.preprocess.grid_step = 4.0  # 400 pixels
    config.model.dim = 4
    config.model.n_res = 1
    config.model.mlp_dim = 16
    config.model.style_dim = 4
    config.dis.dim = 4
    config.dis.n_layers = 2
    config.dis.n_scales = 2
    config.train.batch_size = 4
    config.train.steps = 6
    config.train.decay_start = 3
    config.train.lr = 1e-3
    config.train.n_val = 8
    config.train.log_every = 1
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.demo.n_synthetic = 48
    config.demo.n_observed = 48
    config.demo.n_test = 16
    config.demo.n_reference = 3000
    config.demo.tsne_points = 20
    config.emulator.hidden = [32]
    config.emulator.max_epochs = 20
    config.infer.chunk_size = 8
    return config
