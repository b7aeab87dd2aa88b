"""The public reference code (github zeyangyan/SOST, PyTorch), setting for setting.

Read from its `models.py`, `SOST.py` and `train.py`:

- network: width 64, 2 down-samplings, 3 residual blocks, style 8, MLP 256 (the defaults);
  unpadded encoder convolutions (content code 256 x 1197 at 4800 pixels), a style encoder
  entered by a kernel-7 stride-4 convolution with instance norm, uncropped transposed
  convolutions and a kernel-7 transposed output layer; residual blocks zero-padded;
- initialisation: convolution weights N(0, 0.02) (`weights_init_normal`), biases, linear
  layers and LayerNorm scales at PyTorch's defaults (AdaIN parameters start small);
- discriminators: 3 scales of 64-128-256-512 channels, zero padding, LeakyReLU 0.1, and a
  1-wide average pool of stride 2 between scales (every other pixel);
- losses: LSGAN 1, in-domain L1 5 (over every pixel), style 1, content 20 with the target
  content code detached, cycle 1;
- Adam 1e-4, betas (0.5, 0.999), no weight decay, batch 8; the generators step first, then
  each discriminator on the fakes of that same forward pass; linear decay of the learning
  rate (from epoch 200 of 261 there; here over the second half of ``train.steps``).

Data, from the paper: observed training spectra with g-band S/N > 30, and each library
template's style from the observed spectrum (S/N > 30) with the smallest error-weighted
chi2. Set the two domains' prepared stores, e.g. ``--synthetic stores/kurucz --observed
stores/lamost``.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    # network geometry and initialisation
    config.model.arch = "reference"
    config.model.init = "reference"
    config.model.pad_mode = "zero"
    config.dis.init = "reference"
    config.dis.pad_mode = "zero"
    config.dis.leaky_slope = 0.1
    config.dis.downsample = "decimate"
    # losses (the reference's lambda_gan, lambda_id, lambda_style, lambda_cont, lambda_cyc)
    config.loss.gan = 1.0
    config.loss.recon_x = 5.0
    config.loss.recon_s = 1.0
    config.loss.recon_c = 20.0
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
    # data (the paper's S/N cut) and the library's style partners
    config.train.min_snr = 30.0
    config.library.style = "matched"
    config.library.match_weight = "ivar"
    config.library.match_min_snr = 30.0
    return config
