"""sost-jax: Synthetic-to-Observed Spectral Translation (Yan et al.) in JAX/Flax.

The package is cut by the paper's stages, data flowing down the table; each row names the
step and where it is done (``sost-jax`` subcommand in brackets):

==========================================  ==================================================
reading FITS spectra, grids, catalogues     ``data.io`` (LAMOST, 1-D FITS; ck04, ASCII and
                                            array grids; input catalogues)
rest frame, resampling, resolution,         ``data.preprocess``
pseudo-continuum normalisation
prepared datasets [prepare]                 ``data.prepare`` (arrays), ``data.prepare_files``
                                            (files, in reader processes), ``data.store``
the embedded mock survey [mock]             ``mock`` (its settings: ``mock.settings``)
training batches, synthetic partners        ``data.batches``; ``sost.pairing`` [pair]
content and style encoders, AdaIN decoder,  ``sost.generator``, ``sost.discriminator``
multi-scale discriminators                  (``sost.layers``: pure Flax modules)
in-domain, latent, cycle, LSGAN, paired     ``sost.objectives`` (``sost.losses``: the
and mean-gap objectives                     terms)
the train step and loop [train]             ``sost.training`` (``sost.input_pipeline``,
                                            ``sost.validation``, ``sost.checkpoints``)
translation synthetic -> observed           ``sost.translation`` (the trained ``Translator``)
Payne-style emulator of the synthetic grid  ``library.emulator``
the library's cells, style codes            ``library.cells``, ``library.styles``
the template library [library]              ``library.recipe`` (raw and SOST libraries),
                                            ``library.templates`` (FITS), ``library.
                                            translated_emulator``
chi2 template matching, two-best rule       ``inference.matching`` (vmapped, sharded),
                                            ``inference.grid_estimate``, ``inference.flags``
continuous fit after the grid match         ``inference.fit`` (spectral model, bounded LM,
[calibrate]                                 error calibration, the fit stage of a run)
Teff, log g, [Fe/H] of spectra in memory    ``inference.estimate`` (the core), in Python:
                                            ``inference.api``
resumable catalogues of files [infer]       ``inference.runner``, ``inference.catalogue``
comparison with reference labels            ``evaluation`` (``crossmatch``, ``metrics``,
[evaluate]                                  ``report``, ``figures``)
the whole method on the mock survey [demo]  ``demo`` (``demo.run``)
==========================================  ==================================================

Settings are data: each stage owns its typed settings (``data.settings``,
``sost.settings``, ``library.settings``, ...), on the base in ``settings`` (which also reads
config files); ``config`` assembles a whole run's (`RunSettings`). ``runtime`` holds what
every stage runs on (device mesh, ``jax.distributed``, memory, atomic files); ``errors`` the
errors raised on purpose for the user; ``sost.reference_port`` loads the public PyTorch
reference code's weights. ``cli`` is the command.
"""

__version__ = "0.1.0"
