"""Synthetic partners of observed spectra: the emulator's spectrum at each star's labels.

The paper trains SOST on unpaired spectra. Yet the observed stars that choose the library's
cells have reference labels, so each of them has a synthetic counterpart: the model spectrum
at its labels. `paired_store` writes those counterparts as a prepared store row-aligned with
the observed store; training with ``loss.paired`` > 0 then asks the translation of each
counterpart, with the observed star's own style, to reproduce the observed spectrum
(`sost_jax.sost.objectives.generator_loss`). Stars without usable labels get a partner of zero
weight and are left out of that term.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from sost_jax.data.store import PreparedStore, StoreWriter
from sost_jax.errors import InputError
from sost_jax.library.emulator import Emulator


@dataclasses.dataclass(frozen=True)
class LabelErrors:
    """How reference labels differ from the truth: a systematic error, then Gaussian noise.

    A survey pipeline's labels (LAMOST's LASP against APOGEE, say) are offset, compressed
    and noisy. With ``t, g, f`` the true Teff [K], log g [dex], [Fe/H] [dex]:

        Teff'   = teff_scale * t + teff_offset + N(0, noise[0]^2)
        log g'  = g + logg_pull * (logg_pivot - g) + N(0, noise[1]^2)
        [Fe/H]' = f + feh_offset + N(0, noise[2]^2)

    ``logg_pull`` 0.15 compresses log g by 15% towards ``logg_pivot``.
    """

    noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    teff_offset: float = 0.0
    teff_scale: float = 1.0
    logg_pull: float = 0.0
    logg_pivot: float = 3.5
    feh_offset: float = 0.0

    def __post_init__(self) -> None:
        if len(self.noise) != 3 or any(not (float(v) >= 0) for v in self.noise):
            raise InputError(f"label noise must be 3 numbers >= 0 (K, dex, dex), got {self.noise}")
        if not self.teff_scale > 0:
            raise InputError(f"teff_scale must be > 0, got {self.teff_scale}")
        if not 0 <= self.logg_pull < 1:
            raise InputError(f"logg_pull must be in [0, 1), got {self.logg_pull}")

    @classmethod
    def from_config(cls, noise: Sequence[float], bias: Mapping[str, Any] | None) -> LabelErrors:
        """From ``demo.label_noise`` and a ``demo.label_bias`` section (unknown keys refused)."""
        bias = dict(bias or {})
        known = {f.name for f in dataclasses.fields(cls)} - {"noise"}
        unknown = sorted(set(bias) - known)
        if unknown:
            raise InputError(f"unknown label bias keys {unknown}; known: {sorted(known)}")
        return cls(noise=tuple(float(v) for v in noise), **{k: float(v) for k, v in bias.items()})

    def systematic(self, labels: np.ndarray) -> np.ndarray:
        """The labels [N, 3] with the systematic error only."""
        t, g, f = np.asarray(labels, np.float64).T
        return np.stack(
            [
                self.teff_scale * t + self.teff_offset,
                g + self.logg_pull * (self.logg_pivot - g),
                f + self.feh_offset,
            ],
            axis=1,
        )

    def apply(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Reference labels [N, 3] for true ``labels`` [N, 3]: systematic error plus noise."""
        labels = np.asarray(labels, np.float64)
        return self.systematic(labels) + rng.normal(size=labels.shape) * np.asarray(self.noise)


def partner_rows(labels: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Which stars can have a partner: all three labels finite and inside [low, high].

    Parameters
    ----------
    labels : [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex]; NaN where unknown.
    low, high : [3]
        The span of the emulator's training grid (it extrapolates outside it).

    Returns
    -------
    bool [N]
    """
    labels = np.asarray(labels, np.float64)
    with np.errstate(invalid="ignore"):
        inside = (labels >= np.asarray(low)) & (labels <= np.asarray(high))
    return np.isfinite(labels).all(axis=1) & inside.all(axis=1)


def paired_store(
    emulator: Emulator,
    observed: PreparedStore,
    out_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    batch: int = 256,
    shard_size: int = 4096,
) -> PreparedStore:
    """Write the synthetic partners of every spectrum of ``observed`` as a store.

    Parameters
    ----------
    emulator : Emulator
        Synthetic spectra at any labels, on the observed store's wavelengths.
    observed : PreparedStore
        Observed spectra with reference labels (NaN where unknown).
    out_dir : path
        The partner store; an existing complete one for the same inputs is reused.
    labels : [N, 3], optional
        Reference labels of the observed rows (Teff [K], log g [dex], [Fe/H] [dex]; NaN
        unknown); default the store's own.
    batch : int
        Labels per emulator call.
    shard_size : int
        Spectra per shard.

    Returns
    -------
    PreparedStore
        Row i holds the emulator's flux at observed row i's labels with weight 1, or flux 1
        and weight 0 where the labels are unknown or outside the emulator's grid.

    Raises
    ------
    ValueError
        The emulator and the store have different wavelength grids, or no star can be
        paired.
    """
    wave = observed.wave
    if emulator.wave is not None and (
        emulator.wave.shape != wave.shape or not np.allclose(emulator.wave, wave)
    ):
        raise InputError(
            f"the emulator's grid ({emulator.n_pixels} px) is not the observed store's "
            f"({wave.size} px, {wave[0]:.1f}-{wave[-1]:.1f} Å)"
        )
    labels = np.asarray(observed.labels if labels is None else labels, np.float64)
    if labels.shape != (len(observed), 3):
        raise InputError(f"labels must be [{len(observed)}, 3], got {labels.shape}")
    ok = partner_rows(labels, emulator.scaler.low, emulator.scaler.high)
    if not ok.any():
        raise InputError(
            f"no spectrum of {observed.root} has all three labels inside the emulator's grid "
            f"({emulator.scaler.low} - {emulator.scaler.high}): nothing to pair"
        )
    n = len(labels)
    info = {
        "source": "paired",
        "observed": str(Path(observed.root).absolute()),
        "n_observed": int(n),
        "n_paired": int(ok.sum()),
        "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest()[:16],
        "emulator_low": [float(v) for v in emulator.scaler.low],
        "emulator_high": [float(v) for v in emulator.scaler.high],
    }
    writer = StoreWriter(out_dir, wave, info, n_shards=-(-n // shard_size))
    done = writer.done_shards()
    ids = np.asarray(observed.meta["id"]).astype(str)
    for index, lo in enumerate(range(0, n, shard_size)):
        if index in done:
            continue
        rows = np.arange(lo, min(lo + shard_size, n))
        flux = np.ones((len(rows), wave.size), np.float32)
        good = rows[ok[rows]]
        for start in range(0, len(good), batch):
            part = good[start : start + batch]
            flux[part - lo] = np.asarray(emulator.generate(jnp.asarray(labels[part], jnp.float32)))
        weight = np.zeros_like(flux)
        weight[ok[rows]] = 1.0
        writer.write_shard(index, flux, weight, labels[rows], {"id": ids[rows]})
    return PreparedStore(out_dir)
