"""Unpaired SOST at CPU scale: no labels are read for the observed stars.

The cpu config's small network and schedule (width 16, 2 residual blocks, lr 1e-3 decaying
linearly over the second half of 700 steps) and its position-aware change decoder (the
translation starts as the raw synthetic spectrum), trained with the paper's unpaired terms
only: LSGAN, in-domain reconstruction, content and style reconstruction (content target
detached, as in the reference code) and the cycle. Two departures from the paper serve
the adversarial term:

- the observed domain's discriminator sees each translation with the noise and mask of an
  observed spectrum of the batch (``loss.gan_measured``): observed spectra are noisy, the
  translations are not, and without it the generator learns to paint noise on;
- observed training spectra with S/N >= 30 only (the paper's cut), no weight decay.

How far this gets on the mock survey is measured by ``python benchmarks/formulations.py``
(README, "Which formulation").
"""

from sost_jax.config import cpu_config


def get_config():
    config = cpu_config()
    config.loss.paired = 0.0
    config.loss.gan = 1.0
    config.loss.recon_x = 10.0
    config.loss.recon_c = 1.0
    config.loss.recon_s = 1.0
    config.loss.cycle = 1.0
    config.loss.detach_content = True
    config.loss.gan_measured = True
    config.train.min_snr = 30.0
    config.train.weight_decay = 0.0
    config.demo.label_noise = [0.0, 0.0, 0.0]  # no labels are used
    return config
