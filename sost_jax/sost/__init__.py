"""SOST itself: the 1-D MUNIT that translates synthetic spectra into the observed domain.

The networks are pure Flax modules: ``generator`` (content and style encoders, AdaIN
decoder), ``discriminator`` (multi-scale discriminators), built from the blocks of
``layers``; ``models`` holds their config defaults. Training: ``objectives`` (the generator
and discriminator losses, from the elementwise ``losses``), ``input_pipeline`` (stores,
held-out spectra, batches), ``validation``, ``training`` (the jitted train step and the
loop), ``checkpoints`` and ``optim``; ``pairing`` gives observed stars synthetic partners
(paired SOST); ``translation`` applies a trained run; ``reference_port`` loads the PyTorch
reference code's weights.
"""
