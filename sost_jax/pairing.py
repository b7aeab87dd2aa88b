"""Synthetic partners of observed spectra: the emulator's spectrum at each star's labels.

The paper trains SOST on unpaired spectra. Yet the observed stars that choose the library's
cells have reference labels, so each of them has a synthetic counterpart: the model spectrum
at its labels. `paired_store` writes those counterparts as a prepared store row-aligned with
the observed store; training with ``loss.paired`` > 0 then asks the translation of each
counterpart, with the observed star's own style, to reproduce the observed spectrum
(`sost_jax.training.generator_loss`). Stars without usable labels get a partner of zero
weight and are left out of that term.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from sost_jax.emulator import Emulator
from sost_jax.store import PreparedStore, StoreWriter


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
        raise ValueError(
            f"the emulator's grid ({emulator.n_pixels} px) is not the observed store's "
            f"({wave.size} px, {wave[0]:.1f}-{wave[-1]:.1f} Å)"
        )
    labels = np.asarray(observed.labels if labels is None else labels, np.float64)
    if labels.shape != (len(observed), 3):
        raise ValueError(f"labels must be [{len(observed)}, 3], got {labels.shape}")
    ok = partner_rows(labels, emulator.scaler.low, emulator.scaler.high)
    if not ok.any():
        raise ValueError(
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
