"""The emulator itself: settings, label scaling, the Payne-style network, save and load."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError
from sost_jax.settings import Settings
from sost_jax.sost import checkpoints

Array = jax.Array

FORMAT_VERSION = 1
MIN_GRID_POINTS = 8
"""Fewest grid points with finite labels `train_emulator` accepts (training + held out)."""

ACTIVATIONS = {
    "leaky_relu": nn.leaky_relu,
    "sigmoid": nn.sigmoid,
    "tanh": nn.tanh,
    "silu": nn.silu,
}
TARGETS = ("standardised", "deviation", "flux")
LOSSES = ("l1", "l2")


@dataclass(frozen=True)
class EmulatorSettings(Settings):
    """Architecture and training of the emulator.

    Attributes
    ----------
    hidden : tuple of int
        Widths of the hidden layers.
    activation : str
        "leaky_relu" (default, as the Payne code), "sigmoid" (the Payne paper), "tanh", "silu".
    target : str
        What the last layer predicts: "standardised" (deviation from the grid's mean
        spectrum over its per-pixel standard deviation), "deviation" (from the mean), "flux".
    loss : str
        "l1" (mean absolute residual) or "l2" (mean squared residual), in flux units, over
        pixels with data. The held-out value of the same loss drives early stopping.
    learning_rate : float
        Adam's initial step size.
    lr_final_fraction : float
        The step size follows a cosine from ``learning_rate`` to this fraction of it over
        ``max_epochs``; 1 keeps it constant.
    batch_size : int
        Grid points per Adam step (the whole training set when it has fewer points).
    max_epochs : int
        Passes over the training points at most.
    patience : int
        Stop after this many epochs without a lower held-out loss.
    eval_every : int
        Epochs per jit-compiled call between held-out evaluations.
    valid_fraction : float
        Fraction of the grid points held out (at least one point).
    max_minutes : float
        Wall-clock budget of the training loop (0 = none); the best parameters are kept.
    seed : int
        Seed of the split, the initial weights and the mini-batch orders.
    """

    section = "emulator"

    hidden: tuple[int, ...] = (300, 300)
    activation: str = "leaky_relu"
    target: str = "standardised"
    loss: str = "l1"
    learning_rate: float = 1e-3
    lr_final_fraction: float = 0.1
    batch_size: int = 128
    max_epochs: int = 3000
    patience: int = 200
    eval_every: int = 5
    valid_fraction: float = 0.1
    max_minutes: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise InputError(f"hidden must be one or more positive widths, got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise InputError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.target not in TARGETS:
            raise InputError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.lr_final_fraction <= 1:
            raise InputError(f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction}")
        for name in ("batch_size", "max_epochs", "patience", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.valid_fraction < 1:
            raise InputError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.max_minutes < 0:
            raise InputError(f"max_minutes must be >= 0, got {self.max_minutes}")


class Scaler(NamedTuple):
    """Per-label affine map of the training grid's [min, max] onto [-0.5, 0.5].

    Attributes
    ----------
    low, high : float64 [3]
        Minimum and maximum of Teff [K], log g [dex], [Fe/H] [dex] over the training grid.
        A label with one value on the grid (high = low) maps to -0.5.
    """

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, labels: np.ndarray) -> Scaler:
        """The scaler of ``labels`` [N, 3] (finite)."""
        labels = np.asarray(labels, np.float64)
        return cls(labels.min(axis=0), labels.max(axis=0))

    @property
    def span(self) -> np.ndarray:
        """float64 [3] high - low, 1 where a label takes one value."""
        span = np.asarray(self.high, np.float64) - np.asarray(self.low, np.float64)
        return np.where(span > 0, span, 1.0)

    def scale(self, labels: Array | np.ndarray) -> Array:
        """Labels [N, 3] -> float32 [N, 3], the grid's span at [-0.5, 0.5]; traceable."""
        labels = jnp.asarray(labels, jnp.float32)
        low = jnp.asarray(self.low, jnp.float32)[None, :]
        span = jnp.asarray(self.span, jnp.float32)[None, :]
        return (labels - low) / span - jnp.float32(0.5)

    def unscale(self, scaled: Array | np.ndarray) -> Array:
        """Inverse of `scale`."""
        scaled = jnp.asarray(scaled, jnp.float32)
        low = jnp.asarray(self.low, jnp.float32)[None, :]
        span = jnp.asarray(self.span, jnp.float32)[None, :]
        return (scaled + jnp.float32(0.5)) * span + low

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(LABEL_NAMES),
            "low": [float(v) for v in self.low],
            "high": [float(v) for v in self.high],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scaler:
        return cls(np.asarray(d["low"], np.float64), np.asarray(d["high"], np.float64))


class PayneMLP(nn.Module):
    """Scaled labels [N, 3] -> network output [N, n_pixels] (see `EmulatorSettings.target`).

    Dense layers of widths ``hidden`` with ``activation`` after each, then a linear layer
    with one output per pixel.
    """

    hidden: tuple[int, ...]
    n_pixels: int
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        return nn.Dense(self.n_pixels)(x)


def apply_emulator(module: PayneMLP, arrays: Mapping[str, Any], labels: Array) -> Array:
    """Pure emulator: ``arrays`` (`Emulator.arrays`) and labels [N, 3] -> flux [N, P]."""
    scaled = (labels - arrays["low"][None, :]) / arrays["span"][None, :] - jnp.float32(0.5)
    out = module.apply({"params": arrays["params"]}, scaled)
    return arrays["flux_mean"][None, :] + arrays["flux_scale"][None, :] * out


_generate = jax.jit(apply_emulator, static_argnums=0)


@dataclass(frozen=True)
class EmulatorFunction:
    """`apply_emulator` bound to a module: ``(arrays, labels [N, 3]) -> flux [N, P]``.
    Hashable and equal for equal modules, so it can be a static argument of `jax.jit`."""

    module: PayneMLP

    def __call__(self, arrays: Mapping[str, Any], labels: Array) -> Array:
        return apply_emulator(self.module, arrays, labels)


class Emulator:
    """A trained emulator: labels -> flux on the training grid's wavelengths.

    Attributes
    ----------
    settings : EmulatorSettings
        How it was built and trained.
    params : pytree of float32 arrays
        `PayneMLP` weights.
    scaler : Scaler
        Label scaling of the training grid.
    flux_mean, flux_scale : float32 [P]
        Output transform: flux = flux_mean + flux_scale * network output.
    wave : float64 [P] or None
        Wavelength of each pixel [Å].
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        params: Any,
        scaler: Scaler,
        flux_mean: Array | np.ndarray,
        flux_scale: Array | np.ndarray,
        wave: np.ndarray | None = None,
    ):
        self.settings = settings
        self.params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
        self.scaler = Scaler(
            np.asarray(scaler.low, np.float64), np.asarray(scaler.high, np.float64)
        )
        self.flux_mean = jnp.asarray(flux_mean, jnp.float32)
        self.flux_scale = jnp.asarray(flux_scale, jnp.float32)
        self.wave = None if wave is None else np.asarray(wave, np.float64)
        if self.flux_mean.ndim != 1 or self.flux_scale.shape != self.flux_mean.shape:
            raise InputError(
                f"flux_mean and flux_scale must both be [P]; got {self.flux_mean.shape} "
                f"and {self.flux_scale.shape}"
            )
        if self.wave is not None and self.wave.shape != self.flux_mean.shape:
            raise InputError(f"wave has {self.wave.shape} pixels, the emulator {self.n_pixels}")

    @property
    def n_pixels(self) -> int:
        return int(self.flux_mean.shape[0])

    @property
    def module(self) -> PayneMLP:
        return PayneMLP(self.settings.hidden, self.n_pixels, self.settings.activation)

    def generate(self, labels: Array | np.ndarray) -> Array:
        """Synthetic spectra at any labels (jit-compiled; traceable inside other jits).

        Parameters
        ----------
        labels : [N, 3]
            Teff [K], log g [dex], [Fe/H] [dex]. Outside the training grid's span the
            network extrapolates, without warning.

        Returns
        -------
        flux : float32 [N, P]
        """
        if jnp.ndim(labels) != 2 or jnp.shape(labels)[1] != 3:
            raise InputError(
                f"labels must be [N, 3] (Teff, log g, [Fe/H]); got {jnp.shape(labels)}"
            )
        return _generate(self.module, self.arrays, jnp.asarray(labels, jnp.float32))

    __call__ = generate

    @property
    def arrays(self) -> dict[str, Any]:
        """Everything `apply_emulator` needs besides the module: weights, label scaling
        (``low``, ``span``) and output transform (a pytree of float32 arrays)."""
        return {
            "params": self.params,
            "low": jnp.asarray(self.scaler.low, jnp.float32),
            "span": jnp.asarray(self.scaler.span, jnp.float32),
            "flux_mean": self.flux_mean,
            "flux_scale": self.flux_scale,
        }

    @property
    def function(self) -> EmulatorFunction:
        """``(arrays, labels [N, 3]) -> flux [N, P]``, pure and traceable: with `arrays`,
        the emulator as a function of its arrays (for fits that jit over them)."""
        return EmulatorFunction(self.module)

    def _arrays(self) -> dict[str, Any]:
        return {"params": self.params, "flux_mean": self.flux_mean, "flux_scale": self.flux_scale}

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the emulator to the directory ``path`` (see the module docstring).

        Returns the absolute path. An existing directory is refused unless ``overwrite``.
        """
        path = Path(path).absolute()
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        checkpoints.save_arrays(path / "arrays", self._arrays())
        record = {
            "format": "sost_jax.library.emulator",
            "version": FORMAT_VERSION,
            "settings": self.settings.to_dict(),
            "scaler": self.scaler.to_dict(),
            "n_pixels": self.n_pixels,
            "wave": None if self.wave is None else [float(w) for w in self.wave],
        }
        (path / "emulator.json").write_text(json.dumps(record, indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Emulator:
        """Read an emulator written by `save`."""
        path = Path(path).absolute()
        meta_path = path / "emulator.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{path} is not a saved emulator (no emulator.json)")
        record = json.loads(meta_path.read_text())
        if (
            record.get("format") != "sost_jax.library.emulator"
            or record.get("version") != FORMAT_VERSION
        ):
            raise InputError(
                f"{meta_path}: not a version-{FORMAT_VERSION} sost_jax emulator "
                f"(format {record.get('format')!r}, version {record.get('version')!r})"
            )
        settings = EmulatorSettings.from_dict(record["settings"])
        n_pixels = int(record["n_pixels"])
        module = PayneMLP(settings.hidden, n_pixels, settings.activation)
        shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 3)))
        vector = jax.ShapeDtypeStruct((n_pixels,), jnp.float32)
        target = checkpoints.on_device(
            {"params": shapes["params"], "flux_mean": vector, "flux_scale": vector}
        )
        arrays = checkpoints.load_arrays(path / "arrays", target)
        wave = record.get("wave")
        return cls(
            settings,
            arrays["params"],
            Scaler.from_dict(record["scaler"]),
            arrays["flux_mean"],
            arrays["flux_scale"],
            None if wave is None else np.asarray(wave, np.float64),
        )
