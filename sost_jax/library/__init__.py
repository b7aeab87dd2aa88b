"""The template library: translated spectra on the paper's grid of cells.

``emulator`` (the Payne-style emulator of the synthetic grid), ``cells`` (which cells the
reference catalogue keeps), ``styles`` (the style code each translated template takes),
``templates`` (building, writing and reading a library), ``translated_emulator`` (the
emulator of the translated library that the continuous fit goes through) and ``recipe`` (all
of them from a config: ``sost-jax library``).
"""
