"""The ``data`` section of a config: how spectrum files are read."""

from __future__ import annotations

from dataclasses import dataclass

from sost_jax.settings import Settings, at_least, one_of

READERS = ("auto", "lamost", "fits1d")
"""Spectrum file readers: the format found from the file ("auto"), LAMOST, 1-D FITS."""


@dataclass(frozen=True)
class DataSettings(Settings):
    """Reading files into prepared spectra.

    Attributes
    ----------
    reader : str
        One of `READERS`.
    workers : int
        Reader processes; -1 (any negative): one per core, at most 8.
    shard_size : int
        Spectra per shard of a prepared store on disk.
    chunk_size : int
        Files per task handed to a reader process.
    """

    section = "data"
    reader: str = "auto"
    workers: int = -1
    shard_size: int = 4096
    chunk_size: int = 256

    def __post_init__(self) -> None:
        one_of(self, "reader", READERS)
        at_least(self, 1, "shard_size", "chunk_size")

    @property
    def reader_workers(self) -> int | None:
        """Reader processes, or None (the readers' default) when ``workers`` is negative."""
        return self.workers if self.workers >= 0 else None
