"""The published SOST settings (Yan et al.), with the reference code where the paper is silent.

From the paper's text: width 64, 2 down-samplings, 3 residual blocks, style 8, 4800 pixels,
batch 8, Adam 1e-4 (0.5, 0.999), loss weights GAN 1, reconstruction 10, content 1, style 1,
plus a cycle-consistency loss whose weight the paper does not state: we use the reference
code's 1. Observed training spectra with g-band S/N > 30; each library template takes the
style of the S/N > 30 observed spectrum with the smallest error-weighted chi2.

Everything the paper does not state is the reference code's (configs/reference.py): its
network geometry (content code 256 x 1197 at 4800 pixels; the paper's text says 256 x 298,
which its own code does not give), initialisation, discriminators (LeakyReLU 0.1, every
other pixel between scales), the detached content target, no weight decay, and the
discriminators stepping on the generator step's own fakes.

The number of iterations is not given in the paper; 200k with linear decay from 100k is
our choice. Set the two domains' prepared stores, e.g. ``--synthetic stores/kurucz
--observed stores/lamost``.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    # network geometry and initialisation (the reference code's)
    config.model.arch = "reference"
    config.model.init = "reference"
    config.model.pad_mode = "zero"
    config.dis.init = "reference"
    config.dis.pad_mode = "zero"
    config.dis.leaky_slope = 0.1
    config.dis.downsample = "decimate"
    # losses (the paper's weights; cycle 1 is the reference's, the paper gives none)
    config.loss.gan = 1.0
    config.loss.recon_x = 10.0
    config.loss.recon_s = 1.0
    config.loss.recon_c = 1.0
    config.loss.cycle = 1.0
    config.loss.detach_content = True
    config.loss.recon_weighting = "none"
    # optimisation
    config.train.lr = 1e-4
    config.train.beta1 = 0.5
    config.train.beta2 = 0.999
    config.train.weight_decay = 0.0
    config.train.batch_size = 8
    config.train.dis_fakes = "same"
    # data and the library's style partners (the paper's S/N > 30)
    config.train.min_snr = 30.0
    config.library.style = "matched"
    config.library.match_weight = "ivar"
    config.library.match_min_snr = 30.0
    return config
