"""The training data of SOST: the two domains' prepared stores, held-out spectra, batches.

`training_data` opens the synthetic (domain "a") and observed ("b") stores named in
``config.train``, keeps the observed spectra above ``train.min_snr``, holds out
``train.n_val`` spectra of each domain for validation and streams this process's share of
shuffled training batches (`sost_jax.data.batches.BatchStream`); with ``loss.paired`` > 0 a
third stream ("p") draws observed spectra that have synthetic partners, with those
partners. `loss_constants` derives the arrays the loss needs that are fixed for a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from ml_collections import ConfigDict

from sost_jax.data.batches import BatchStream, split_validation
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError


@dataclass(frozen=True)
class TrainingData:
    """What the training loop draws from.

    Attributes
    ----------
    stores : dict domain -> PreparedStore
        "a" synthetic, "b" observed; P pixels each.
    streams : dict -> BatchStream
        Training batches of "a", "b" and, for paired SOST, "p" (observed spectra with
        synthetic partners); this process's share of each batch.
    validation : dict domain -> dict
        The held-out spectra of "a" and "b": ``x`` [N, P] normalised flux, ``w`` [N, P]
        their weights (inverse variance).
    """

    stores: dict[str, PreparedStore]
    streams: dict[str, BatchStream]
    validation: dict[str, dict[str, np.ndarray]]


def _open_domain(path: str, name: str, n_pixels: int | None) -> PreparedStore:
    if not path:
        raise InputError(f"train.{name}_store is not set: give the prepared store of that domain")
    store = PreparedStore(path)
    if n_pixels is not None and store.n_pixels != n_pixels:
        raise InputError(
            f"{name} store {path} has {store.n_pixels} pixels, the other domain {n_pixels}"
        )
    return store


def training_rows(store: PreparedStore, min_snr: float, name: str) -> np.ndarray:
    """Rows of ``store`` to train on: all, or those with S/N >= ``min_snr`` (store meta
    ``snr``, per pixel) when ``min_snr`` > 0."""
    if min_snr <= 0:
        return np.arange(len(store))
    if "snr" not in store.meta:
        raise InputError(
            f"train.min_snr = {min_snr} but the {name} store {store.root} records no S/N "
            "(meta 'snr'); set train.min_snr=0 or prepare the store from files with S/N"
        )
    snr = np.asarray(store.meta["snr"], np.float64)
    rows = np.flatnonzero(np.nan_to_num(snr, nan=-np.inf) >= min_snr)
    if rows.size < 10:
        raise InputError(
            f"only {rows.size} of {len(store)} {name} spectra have S/N >= {min_snr} "
            "(train.min_snr): too few to train on"
        )
    return rows


def open_stores(config: ConfigDict) -> tuple[dict[str, PreparedStore], PreparedStore | None]:
    """The synthetic ("a") and observed ("b") stores of ``config.train``, and the paired
    store (synthetic partners of the observed spectra, row-aligned with them) when
    ``loss.paired`` > 0, else None; all with the same number of pixels."""
    tc = config.train
    store_a = _open_domain(tc.synthetic_store, "synthetic", None)
    store_b = _open_domain(tc.observed_store, "observed", store_a.n_pixels)
    paired = None
    if config.loss.paired > 0:
        if not tc.paired_store:
            raise InputError(
                "loss.paired > 0 needs train.paired_store: synthetic spectra at the observed "
                "spectra's labels (sost-jax pair)"
            )
        paired = _open_domain(tc.paired_store, "paired", store_a.n_pixels)
    return {"a": store_a, "b": store_b}, paired


def local_batch_size(batch_size: int, mesh: Mesh) -> int:
    """This process's share of a global batch of ``batch_size`` spectra, which must divide
    evenly over the devices of ``mesh`` and the processes."""
    n_proc = jax.process_count()
    if batch_size % len(mesh.devices.flat) or batch_size % n_proc:
        raise InputError(
            f"train.batch_size {batch_size} must be a multiple of the {mesh.devices.size} "
            f"devices and {n_proc} processes"
        )
    return batch_size // n_proc


def domain_split(
    store: PreparedStore, domain: str, train: ConfigDict, local_batch: int
) -> tuple[BatchStream, dict[str, np.ndarray]]:
    """The training stream of one domain ("a" or "b") and its held-out spectra (``x``,
    ``w`` [N, P]): ``train.n_val`` (at most a fifth) of the rows it trains on, all of the
    synthetic store's or the observed ones above ``train.min_snr``."""
    if domain == "b":
        rows = training_rows(store, train.min_snr, "observed")
    else:
        rows = np.arange(len(store))  # the S/N cut is for observed spectra only
    n_val = min(train.n_val, len(rows) // 5)
    train_idx, val_idx = split_validation(len(rows), n_val, train.seed)
    train_idx, val_idx = rows[train_idx], rows[val_idx]
    seed = train.seed * 2 + (0 if domain == "a" else 1)
    shard = (jax.process_index(), jax.process_count())
    stream = BatchStream(store, train_idx, local_batch, seed, shard=shard)
    data = store.read(val_idx)
    return stream, {"x": data["flux"], "w": data["weight"]}


def paired_stream(
    observed: BatchStream, paired: PreparedStore, train: ConfigDict, local_batch: int
) -> BatchStream:
    """Batches of the observed training spectra (``observed``'s rows) that have a synthetic
    partner in ``paired`` (weights > 0 somewhere), with those partners; the paired term
    draws its own batches from them."""
    has = np.concatenate([(c["weight"] > 0).any(axis=1) for _, c in paired.iter_chunks(4096)])
    rows = observed.indices[has[observed.indices]]
    if rows.size < max(train.batch_size, 2):
        raise InputError(
            f"only {rows.size} observed training spectra have a synthetic partner in "
            f"{paired.root}: too few for batches of {train.batch_size}"
        )
    shard = (jax.process_index(), jax.process_count())
    return BatchStream(
        observed.store, rows, local_batch, train.seed * 2 + 7, shard=shard, partner=paired
    )


def training_data(config: ConfigDict, mesh: Mesh) -> TrainingData:
    """Open the stores of ``config.train`` and set up the batches of a run over ``mesh``
    (see the module docstring).

    Raises
    ------
    InputError
        A store is not set or does not match the other, too few spectra pass the S/N cut
        or have partners, or the batch size does not divide over devices and processes.
    """
    stores, paired = open_stores(config)
    local_batch = local_batch_size(config.train.batch_size, mesh)
    streams, validation = {}, {}
    for d in ("a", "b"):
        streams[d], validation[d] = domain_split(stores[d], d, config.train, local_batch)
    if paired is not None:
        streams["p"] = paired_stream(streams["b"], paired, config.train, local_batch)
    return TrainingData(stores, streams, validation)


def domain_mean(store: PreparedStore, rows: np.ndarray, max_rows: int = 20_000) -> np.ndarray:
    """Per-pixel mean flux [P] of ``rows`` of a store over the spectra with data there (NaN
    where none has); at most ``max_rows`` rows, evenly spaced, are read."""
    rows = np.asarray(rows)
    if rows.size > max_rows:
        rows = rows[np.linspace(0, rows.size - 1, max_rows).astype(np.int64)]
    total = np.zeros(store.n_pixels)
    count = np.zeros(store.n_pixels)
    for lo in range(0, rows.size, 2048):
        data = store.read(rows[lo : lo + 2048])
        good = np.nan_to_num(data["weight"], nan=0.0) > 0
        total += np.where(good, data["flux"], 0.0).sum(axis=0)
        count += good.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def loss_constants(config: ConfigDict, data: TrainingData) -> dict[str, Any] | None:
    """Arrays the loss needs that are fixed for the run (see
    `sost_jax.sost.objectives.generator_loss`): ``mean_gap`` [P], the observed training
    spectra's mean minus the synthetic ones' (with ``loss.mean_gap`` > 0), or None."""
    if config.loss.mean_gap <= 0:
        return None
    observed = domain_mean(data.stores["b"], data.streams["b"].indices)
    synthetic = domain_mean(data.stores["a"], data.streams["a"].indices)
    return {"mean_gap": observed - synthetic}
