"""SOST itself: the 1-D MUNIT that translates synthetic spectra into the observed domain.

``models`` (content and style encoders, AdaIN decoder, multi-scale discriminators: pure
Flax modules), ``losses``, ``training`` (the jitted train step and the loop), ``checkpoints``
and ``optim``; ``pairing`` gives observed stars synthetic partners (paired SOST);
``translation`` applies a trained run; ``reference_port`` loads the PyTorch reference
code's weights.
"""
