"""The real-data benchmark at survey resolution: ATLAS9/SPECTRUM -> MILES and LAMOST.

benchmarks/miles_atlas9.py reads these settings; a user with another line-resolved grid and
other observed spectra can change them (``key.path=value``) and repeat it.

Synthetic domain: Kurucz ATLAS9 atmospheres synthesised with SPECTRUM
(../shared/data/atlas9_spectrum/grid.npz: 0.2 Å pixels, Gaussian FWHM 0.5 Å, air), degraded
to MILES's line-spread function (a Gaussian of 2.5 Å FWHM; Falcón-Barroso et al. 2011
measured 2.50 Å for MILES v9.1, Beifiori et al. 2011 2.54 Å) and learnt by the Payne-style
emulator. Observed domain: MILES stars (at rest, in air, already at 2.5 Å).

Both on 3900-7400 Å in 1 Å pixels (3501 pixels, in air), divided by the same P-spline
pseudo-continuum (knots every 200 Å). The LAMOST comparison (vacuum, R~1800) brings the 25
DR10 spectra and every library to one coarser Gaussian FWHM (``atlas9.lamost_fwhm``): LAMOST
from its nominal 5500 Å / 1800 = 3.06 Å, the libraries from MILES's 2.5 Å.

SOST: width 8, two residual blocks, batch 8, the change decoder, 4000 steps (as in
configs/miles_ck04.py, whose step count was chosen on its pool). At 3501 pixels a step takes
0.15 s (paired) to 0.23 s (the GAN objectives) on 2 cores, and the libraries with their
translated emulator ~3.5 minutes: each formulation fits the 30-minute budget
(docs/real_spectra.md). The emulator's [300, 300] hidden layers were chosen on held-out grid
nodes: [512, 512] and three layers of 300 gave the same held-out error.
"""

import ml_collections

from sost_jax.config import default_config

FORMULATION_NAMES = ("paired", "semipaired", "subsetpaired", "unpaired", "paper", "reference")


def get_config():
    config = default_config()
    p = config.preprocess
    p.grid_start = 3900.0
    p.grid_stop = 7400.0
    p.grid_step = 1.0  # 3501 pixels
    p.grid_medium = "air"  # MILES and the ATLAS9/SPECTRUM grid are in air
    p.rest_frame = False  # MILES spectra are at rest
    p.degrade_fwhm = 2.5  # MILES's line-spread function [Å]
    p.input_fwhm = 2.5  # MILES v9.1 (so MILES itself is not smoothed)
    p.min_coverage = 0.8
    p.normalise.knot_spacing = 200.0
    config.data.reader = "fits1d"

    config.model.dim = 8
    config.model.n_res = 2
    config.model.mlp_dim = 64
    config.dis.dim = 16
    config.model.translation = "change"
    config.loss.paired = 10.0
    config.loss.gan = 0.0
    config.loss.recon_c = 0.0
    config.loss.recon_s = 0.0
    config.train.batch_size = 8
    config.train.steps = 4000
    config.train.decay_start = 2000
    config.train.lr = 1e-3
    config.train.n_val = 32
    config.train.log_every = 50
    config.train.eval_every = 500
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 1

    e = config.emulator
    e.hidden = [300, 300]
    e.max_epochs = 4000
    e.patience = 400
    e.eval_every = 10
    e.max_minutes = 4.0

    # Cells for ~650 reference stars: 250 K x 0.5 dex x 0.3 dex, at least 2 stars each
    # (the paper's 150 K x 0.25 x 0.15 with 5 stars needs a survey's millions of stars).
    g = config.library.grid
    g.teff_step = 250.0
    g.logg_step = 0.5
    g.feh_step = 0.3
    g.teff_range = [3500.0, 8000.0]
    g.logg_range = [0.0, 5.0]
    g.feh_range = [-2.0, 0.5]  # the ATLAS9/SPECTRUM grid's span
    g.min_stars = 2
    config.library.style = "matched"

    config.infer.k = 10
    config.infer.fit.fit_rv = True
    config.infer.fit.mask_windows = []
    config.library.translated_points_per_cell = 16

    with config.unlocked():  # the benchmark's own section, beside the pipeline's
        config.atlas9 = ml_collections.ConfigDict(
            {
                "grid": "atlas9_spectrum/grid.npz",  # under ../shared/data, or an absolute path
                "input_fwhm": 0.5,  # [Å] the grid's Gaussian line-spread function
                "test_modulus": 5,  # MILES number % test_modulus == test_remainder: test set
                "test_remainder": 0,
                "dev_remainder": 1,  # --dev: the pool's stars with this remainder stand in
                # SOST's synthetic domain: emulator spectra at the pool's labels, jittered.
                "n_synthetic": 4000,
                "label_jitter": [100.0, 0.2, 0.1],
                "lamost_fwhm": 3.5,  # [Å] common resolution of the LAMOST comparison
                "lamost_input_fwhm": 3.06,  # [Å] LAMOST's nominal 5500 Å / R 1800
                "lamost_labels": "lamost_dr10/LASP_CurveFit_inferred.csv",
                "bootstrap": 1000,  # resamples of the test stars for the 68% intervals
                # Training steps per formulation (0: train.steps), from the 30-minute budget.
                "steps": {name: 0 for name in FORMULATION_NAMES},
            }
        )
    return config
