"""Unpaired training batches streamed from prepared stores (with optional row-aligned
partners).

A `BatchStream` draws batches from one store in a per-epoch random order that is a pure
function of (seed, epoch): the position ``(epoch, offset)`` is all the state there is, so a
checkpoint that records it resumes the exact same sequence. Only the index permutation
(8 bytes per spectrum) lives in memory; spectra are gathered from the memory-mapped shards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError


@dataclass(frozen=True)
class Position:
    """Where a stream stands: epoch number and offset into that epoch's order."""

    epoch: int = 0
    offset: int = 0


def split_validation(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random split of ``range(n)`` into (train indices, validation indices)."""
    if n_val >= n:
        raise InputError(f"cannot hold out {n_val} of {n} spectra for validation")
    order = np.random.default_rng([seed, 7919]).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class BatchStream:
    """Endless shuffled batches of (flux, weight) from a store.

    Parameters
    ----------
    store : PreparedStore
        Source of spectra.
    indices : int [M]
        The store rows this stream draws from (e.g. the training split).
    batch_size : int
        Spectra per batch (per process in multi-host runs).
    seed : int
        Seed of the per-epoch orders.
    shard : tuple (index, count)
        This process's share of each global batch of ``batch_size * count`` rows.
    partner : PreparedStore, optional
        A store row-aligned with ``store`` (e.g. synthetic spectra at the labels of the
        observed ones); its rows come with each batch as ``p`` and ``pw``.
    """

    def __init__(
        self,
        store: PreparedStore,
        indices: np.ndarray,
        batch_size: int,
        seed: int,
        shard: tuple[int, int] = (0, 1),
        partner: PreparedStore | None = None,
    ):
        if batch_size < 1 or len(indices) < batch_size * shard[1]:
            raise InputError(
                f"batch of {batch_size * shard[1]} needs at least that many spectra; "
                f"the stream has {len(indices)}"
            )
        self.store, self.indices = store, np.asarray(indices)
        if partner is not None and (
            (len(partner), partner.n_pixels) != (len(store), store.n_pixels)
            or not np.array_equal(
                np.asarray(partner.meta["id"]).astype(str), np.asarray(store.meta["id"]).astype(str)
            )
        ):
            raise InputError(
                f"partner store {partner.root} ({len(partner)} x {partner.n_pixels}) is not "
                f"row-aligned with {store.root} ({len(store)} x {store.n_pixels}): their ids "
                "or shapes differ; make it from this store with sost-jax pair"
            )
        self.batch_size, self.seed, self.shard = batch_size, seed, shard
        self.partner = partner

    def _order(self, epoch: int) -> np.ndarray:
        return self.indices[
            np.random.default_rng([self.seed, epoch]).permutation(len(self.indices))
        ]

    def batch_at(self, pos: Position) -> tuple[dict[str, np.ndarray], Position]:
        """The batch at ``pos`` and the position after it (a batch never spans epochs)."""
        global_size = self.batch_size * self.shard[1]
        if pos.offset + global_size > len(self.indices):
            pos = Position(pos.epoch + 1, 0)
        rows = self._order(pos.epoch)[pos.offset : pos.offset + global_size]
        mine = rows[self.shard[0] * self.batch_size : (self.shard[0] + 1) * self.batch_size]
        data = self.store.read(mine)
        batch = {"x": data["flux"], "w": data["weight"]}
        if self.partner is not None:
            pair = self.partner.read(mine)
            batch.update(p=pair["flux"], pw=pair["weight"])
        return batch, Position(pos.epoch, pos.offset + global_size)

    def iterate(self, start: Position, prefetch: int = 2) -> Iterator[tuple[dict, Position]]:
        """Yield (batch, position after it) from ``start``, reading ahead in a thread."""
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def put(item: object) -> None:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def work() -> None:
            pos = start
            try:
                while not stop.is_set():
                    batch, pos = self.batch_at(pos)
                    put((batch, pos))
            except Exception as err:  # surfaced in the consumer
                put(err)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5.0)
