"""A Payne-style spectral emulator: labels -> normalised flux, trained on a synthetic grid.

Following Ting et al. (2019, The Payne), a small multi-layer perceptron maps the three
stellar labels, each scaled to [-0.5, 0.5] by the grid's minimum and maximum (`Scaler`), to
the flux of every pixel at once. It interpolates a grid of models to any Teff, log g and
[Fe/H] inside the grid's span.

Design choices (all settings in `EmulatorSettings`):

* **Activation.** Leaky ReLU by default, as the maintained Payne code uses; the paper's
  sigmoid (and tanh, SiLU) are available.
* **Output parametrisation.** By default ("standardised") the network predicts each pixel's
  deviation from the training grid's mean spectrum in units of that pixel's standard
  deviation over the grid; flux = mean + std * output. The last layer then starts close to
  the mean spectrum and every pixel's output has unit scale, which speeds up training. "deviation"
  drops the std scaling; "flux" predicts the flux itself, as the original Payne did.
* **Loss.** The loss is computed in flux units whatever the parametrisation: mean absolute
  (default, as the Payne's training code; robust to the few poorly normalised models of real
  grids) or squared residual over the pixels with data.
* **Early stopping.** A seeded random fraction of the grid points is held out; after every
  ``eval_every`` epochs the held-out loss is computed and the parameters with the lowest
  held-out loss so far are kept. Training stops after ``patience`` epochs without
  improvement, at ``max_epochs`` or after ``max_minutes``.
* **Compute.** The data live on the device; ``eval_every`` epochs of shuffled mini-batch Adam
  steps run as one jit-compiled `jax.lax.scan`. The MLP is batched over its first axis (one
  matrix product per layer), so `Emulator.generate` takes any number of label rows.

Saved emulators are a directory: ``emulator.json`` (settings, scaler, wavelength grid) and
``arrays/`` (an orbax PyTree checkpoint of the network weights and the output transform).
"""

from sost_jax.library.emulator.fit import emulator_from_store, load_or_train, train_emulator
from sost_jax.library.emulator.model import (
    ACTIVATIONS,
    MIN_GRID_POINTS,
    Emulator,
    EmulatorSettings,
    PayneMLP,
    Scaler,
)

__all__ = [
    "ACTIVATIONS",
    "MIN_GRID_POINTS",
    "Emulator",
    "EmulatorSettings",
    "PayneMLP",
    "Scaler",
    "emulator_from_store",
    "load_or_train",
    "train_emulator",
]
