"""A small SOST that trains on 2 CPU cores in about 10 minutes on the mock survey.

Width 16 (content code 64 x 1200 at 4800 pixels), 2 residual blocks, lighter
discriminators; trained as paired SOST: every observed star with reference labels has a
synthetic partner (`sost_jax.sost.pairing`), the translation is the synthetic spectrum plus a
position-aware change decoder, and the losses are in-domain reconstruction and the paired
term. A 10x higher learning rate than the paper's, with linear decay over the second half;
the emulator trains for at most 2 minutes. The demo's defaults: `sost_jax.config.cpu_config`
reads this file.

``--set loss.gan=1.0 --set loss.recon_c=1.0 --set loss.recon_s=1.0 --set loss.paired=0.0
--set model.translation=direct`` trains the paper's formulation instead.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    # network
    config.model.dim = 16
    config.model.n_res = 2
    config.model.mlp_dim = 64
    config.model.translation = "change"
    config.dis.dim = 16
    # losses: reconstruction and the paired term
    config.loss.paired = 10.0
    config.loss.gan = 0.0
    config.loss.recon_c = 0.0
    config.loss.recon_s = 0.0
    # schedule
    config.train.batch_size = 8
    config.train.steps = 700
    config.train.decay_start = 350
    config.train.lr = 1e-3
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    config.train.log_every = 20
    config.emulator.max_minutes = 2.0
    # the translated emulator (infer.method=fit) from 2 draws per library cell
    config.library.translated_points_per_cell = 2
    # the demo pairs each observed star at its true labels plus survey-like errors
    config.demo.label_noise = [100.0, 0.15, 0.10]
    return config
