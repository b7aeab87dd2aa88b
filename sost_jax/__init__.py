"""sost-jax: Synthetic-to-Observed Spectral Translation (Yan et al.) in JAX/Flax.

Each step of the paper, and the module that does it (data flows down this list):

==========================================  ==================================================
reading FITS spectra, grids, catalogues     ``io`` (LAMOST, 1-D FITS, ck04; input catalogues)
rest frame, resampling, resolution,         ``preprocess``
pseudo-continuum normalisation
prepared on-disk datasets                   ``store`` (format), ``prepare`` (files -> store)
the embedded mock survey                    ``mock``
training batches                            ``batches``, ``pairing`` (synthetic partners)
content encoder, style encoder, AdaIN       ``models`` (pure Flax modules)
decoder, multi-scale discriminators
in-domain, latent, cycle, LSGAN losses      ``losses``
translation synthetic -> observed           ``translation`` (also the trained ``Translator``)
the train step and loop, checkpoints        ``training``, ``checkpoints``, ``optim``
Payne-style emulator of the synthetic grid  ``emulator``
style codes of the library's templates      ``styles`` (the chi2-matched observed partner)
the library's cells (reference catalogue)   ``cells``
the template library (build, FITS)          ``library``; its ``translated_emulator``;
                                            the whole recipe: ``recipe``
chi2 template matching, two-best rule       ``matching`` (vmapped, sharded: ``devices``),
                                            ``grid_estimate`` (the rule, errors, ``flags``)
continuous fit after the grid match         ``spectral_model`` (emulator, RV, continuum),
                                            ``fitting`` (bounded LM; batched: ``fitter``),
                                            ``calibration`` (errors), ``fitstage`` (inside
                                            a catalogue run)
several processes or hosts                  ``distributed`` (``jax.distributed``); chunk
                                            memory JAX takes as is: ``memory``
resumable output catalogues                 ``catalogue`` (``sost-jax infer``); users'
                                            spectra in Python: ``api``
comparison with reference labels            ``evaluation``: ``crossmatch``, ``metrics``,
                                            ``report``; figures in ``evaluation.figures``
the whole method on the mock survey         ``demo`` (``demo_fit``); the command: ``cli``
==========================================  ==================================================

Settings are data: each stage owns its settings, ``config`` assembles a whole run's
(defaults, validation) and ``configfile`` reads and writes config files; ``errors`` holds the
errors raised on purpose for the user; ``reference_port`` loads the public PyTorch
reference code's weights.
"""

__version__ = "0.1.0"
