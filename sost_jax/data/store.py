"""The prepared-dataset store: normalised spectra on one wavelength grid, on disk, in shards.

Layout of a store directory::

    manifest.json          grid, preprocessing config, number of shards, label names, source
    wave.npy               float64 [P] wavelength grid [Å]
    shards/00000/          one shard (written to a temporary name, then renamed: atomic)
        flux.npy           float32 [n, P] normalised flux (1 where weight is 0)
        weight.npy         float32 [n, P] inverse variance of the normalised flux
        labels.npy         float32 [n, 3] Teff [K], log g [dex], [Fe/H] [dex]; NaN unknown
        meta.npz           1-D columns of length n: id (str), source (str), flags (int32),
                           and numbers such as ra, dec [deg], snr, z
        failures.csv       inputs of this shard that could not be used: source, reason

Rows are read from the ``.npy`` files as needed (one file read per run of consecutive rows;
the arrays are opened as memory maps only for their shapes and offsets), so training and
inference stream stores larger than memory with flat resident memory.
A shard that exists is complete, which makes preparation resumable shard by shard. Its
``flux`` and ``weight`` rows may be written by several processes into the ``.partial``
folder at once (`write_rows`); `StoreWriter.finish_shard` then completes and renames it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError
from sost_jax.runtime.files import write_text
from sost_jax.runtime.memory import aligned_empty

STORE_VERSION = 1
_ARRAYS = ("flux", "weight", "labels")


def shard_name(index: int) -> str:
    """Directory name of shard ``index``."""
    return f"{index:05d}"


def shards_on_disk(root: str | os.PathLike) -> list[int]:
    """Indices of the complete shards of a store, sorted (unfinished ones have a suffix)."""
    folder = Path(root) / "shards"
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def partial_dir(root: str | os.PathLike, index: int) -> Path:
    """Folder a shard is written into before it appears (renamed) as complete."""
    return Path(root) / "shards" / f"{shard_name(index)}.partial"


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header (format 1.0) of a C-ordered array."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buf, {**header, "shape": tuple(shape)})
    return buf.getvalue()


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        done = os.pwrite(fd, data, offset)
        data, offset = data[done:], offset + done


def write_rows(
    folder: str | os.PathLike, name: str, rows: np.ndarray, offset: int, capacity: int
) -> None:
    """Write ``rows`` [n, ...] as rows ``offset`` to ``offset + n`` of ``folder/name.npy``, an
    array of ``capacity`` rows created by the first write. Processes may write disjoint rows
    of one file at the same time (reader processes put their chunks straight into the shard
    being written, so that only metadata crosses between processes); `StoreWriter.
    finish_shard` then drops the unwritten rows and fixes the header's shape."""
    rows = np.ascontiguousarray(rows)
    header = _npy_header((capacity, *rows.shape[1:]), rows.dtype)
    row_bytes = rows[:1].nbytes
    fd = os.open(Path(folder) / f"{name}.npy", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _pwrite_all(fd, memoryview(header), 0)  # the same bytes from every writer
        _pwrite_all(fd, memoryview(rows.reshape(-1)).cast("B"), len(header) + offset * row_bytes)
    finally:
        os.close(fd)


_MOVE_BYTES = 8 << 20
"""Bytes `_compact` moves at a time."""


def _compact(path: Path, spans: Sequence[tuple[int, int]], n_pixels: int) -> None:
    """Make the ``.npy`` file written by `write_rows` hold exactly the rows of ``spans``
    [(first row, n)], in order (an absent file: no rows were written)."""
    if not path.exists():
        np.save(path, np.zeros((0, n_pixels), np.float32))
        return
    with open(path, "r+b") as fh:
        np.lib.format.read_magic(fh)  # format 1.0: written by write_rows
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        start = fh.tell()
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        step = max(1, _MOVE_BYTES // row_bytes)  # rows moved at a time
        kept = 0
        for first, n in spans:
            if first != kept:  # move the span down, each block read before it is written
                for lo in range(0, n, step):
                    fh.seek(start + (first + lo) * row_bytes)
                    block = fh.read(min(step, n - lo) * row_bytes)
                    fh.seek(start + (kept + lo) * row_bytes)
                    fh.write(block)
            kept += n
        header = _npy_header((kept, *shape[1:]), dtype)
        if len(header) == start:
            fh.seek(0)
            fh.write(header)
            fh.truncate(start + kept * row_bytes)
            return
        fh.seek(start)
        data = np.frombuffer(fh.read(kept * row_bytes), dtype).reshape(kept, *shape[1:])
    np.save(path, data)  # a header of another length (not met with 4-5 digit sizes)


class StoreWriter:
    """Writes shards of a prepared store; each shard appears atomically when complete.

    Parameters
    ----------
    root : path
        Store directory (created).
    wave : [P]
        Wavelength grid [Å] of every spectrum in the store.
    info : dict
        JSON-serialisable description written to the manifest: the resolved preprocessing
        config, where the spectra came from. A store reopened with different ``info`` or
        ``wave`` is refused, so a resumed preparation cannot mix two settings.
    n_shards : int, optional
        How many shards the finished store will have; lets readers tell a complete store
        from an interrupted one (`PreparedStore.complete`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        wave: np.ndarray,
        info: Mapping[str, Any],
        n_shards: int | None = None,
    ):
        self.root = Path(root)
        self.wave = np.asarray(wave, dtype=np.float64)
        self.info = json.loads(json.dumps(dict(info)))
        self.n_shards = n_shards
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        manifest_path = self.root / "manifest.json"
        if manifest_path.exists():
            old = json.loads(manifest_path.read_text())
            old_wave = np.load(self.root / "wave.npy")
            if old.get("info") != self.info or not np.array_equal(old_wave, self.wave):
                raise InputError(
                    f"{self.root} already holds a store prepared with other settings; "
                    "choose another output directory or delete it"
                )
        else:
            np.save(self.root / "wave.npy", self.wave)
            self._write_manifest()

    def done_shards(self) -> set[int]:
        """Indices of shards already complete on disk."""
        return set(shards_on_disk(self.root))

    def write_shard(
        self,
        index: int,
        flux: np.ndarray,
        weight: np.ndarray,
        labels: np.ndarray,
        meta: Mapping[str, Sequence | np.ndarray],
        failures: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Write one complete shard.

        Parameters
        ----------
        index : int
            Shard number; shards are read in index order.
        flux, weight : [n, P]
            Normalised flux and its inverse variance.
        labels : [n, 3]
            Teff [K], log g [dex], [Fe/H] [dex]; NaN where unknown.
        meta : dict of [n] columns
            Must contain ``id``; strings and numbers only.
        failures : list of (source, reason)
            Inputs of this shard that were skipped.
        """
        n, p = np.shape(flux)
        if p != self.wave.size or np.shape(weight) != (n, p) or np.shape(labels) != (n, 3):
            raise InputError(
                f"shard arrays disagree: flux {np.shape(flux)}, weight {np.shape(weight)}, "
                f"labels {np.shape(labels)}, grid of {self.wave.size} pixels"
            )
        folder = self.clear_partial(index)
        write_rows(folder, "flux", np.asarray(flux, dtype=np.float32), 0, n)
        write_rows(folder, "weight", np.asarray(weight, dtype=np.float32), 0, n)
        self.finish_shard(index, [(0, n)], labels, meta, failures)

    def clear_partial(self, index: int) -> Path:
        """An empty folder for shard ``index`` to be written into (`write_rows`), in place of
        whatever an interrupted run left there."""
        folder = partial_dir(self.root, index)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        return folder

    def finish_shard(
        self,
        index: int,
        spans: Sequence[tuple[int, int]],
        labels: np.ndarray,
        meta: Mapping[str, Sequence | np.ndarray],
        failures: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Complete shard ``index`` from the flux and weight rows written into its partial
        folder (`clear_partial`, `write_rows`): make it appear, atomically.

        Parameters
        ----------
        spans : list of (first row, number of rows)
            The rows written, in shard order; the rows between spans (room left for inputs
            that were skipped) are dropped, moving later rows down within the file.
        labels, meta, failures
            As `write_shard`, for the ``sum(n for _, n in spans)`` rows kept.
        """
        n = sum(k for _, k in spans)
        if np.shape(labels) != (n, 3):
            raise InputError(f"labels have shape {np.shape(labels)}, expected ({n}, 3)")
        if "id" not in meta:
            raise InputError("shard meta needs an 'id' column")
        columns = {k: np.asarray(v) for k, v in meta.items()}
        for key, col in columns.items():
            if col.shape != (n,):
                raise InputError(f"meta column {key!r} has shape {col.shape}, expected ({n},)")
        tmp = partial_dir(self.root, index)
        for name in ("flux", "weight"):
            _compact(tmp / f"{name}.npy", spans, self.wave.size)
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.float32))
        np.savez(tmp / "meta.npz", **columns)
        with open(tmp / "failures.csv", "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["source", "reason"])
            out.writerows(failures)
        final = self.root / "shards" / shard_name(index)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        self._write_manifest()

    def _write_manifest(self) -> None:
        manifest = {
            "version": STORE_VERSION,
            "n_pixels": int(self.wave.size),
            "wave_start": float(self.wave[0]),
            "wave_stop": float(self.wave[-1]),
            "label_names": list(LABEL_NAMES),
            "info": self.info,
            "n_shards": self.n_shards,
        }
        write_text(self.root / "manifest.json", json.dumps(manifest, indent=1))


def _readable(arrays: dict[str, np.ndarray]) -> bool:
    """Whether every array is a C-ordered memory map of a file (`_read_rows` can read it)."""
    return all(isinstance(a, np.memmap) and a.flags.c_contiguous for a in arrays.values())


def _read_rows(array: np.memmap, rows: np.ndarray, out: np.ndarray) -> None:
    """Rows ``rows`` (sorted, distinct) of a memory-mapped ``.npy`` array into ``out``, one
    file read per run of consecutive rows. Reads leave no pages mapped in this process:
    pages touched through a memory map count as resident until the map is dropped, so a
    pass over a store (or a training run's random batches) grew the resident memory by the
    store's size."""
    row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    flat = memoryview(out.reshape(len(rows), -1)).cast("B")
    with open(array.filename, "rb") as fh:
        for lo, hi in zip(
            np.concatenate([[0], breaks]), np.concatenate([breaks, [len(rows)]]), strict=True
        ):
            fh.seek(array.offset + int(rows[lo]) * row_bytes)
            want = (hi - lo) * row_bytes
            if fh.readinto(flat[lo * row_bytes : hi * row_bytes]) != want:
                raise OSError(f"{array.filename}: short read at row {rows[lo]}")


class PreparedStore:
    """Read access to a prepared store; rows are read from the files on demand (`read`).

    Attributes
    ----------
    wave : float64 [P]
        Wavelength grid [Å].
    meta : dict of [N] arrays
        All metadata columns of all shards, concatenated (small: no pixel data).
    info : dict
        The manifest's description (preprocessing config, source).
    """

    @staticmethod
    def is_store(path: str | os.PathLike) -> bool:
        """Whether ``path`` is a prepared store's folder (else e.g. a catalogue file)."""
        return (Path(path) / "manifest.json").is_file()

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"{self.root} is not a prepared store (no manifest.json)")
        manifest_bytes = manifest_path.read_bytes()
        self.manifest = json.loads(manifest_bytes)
        if self.manifest.get("version") != STORE_VERSION:
            raise InputError(
                f"{self.root}: store version {self.manifest.get('version')} is not supported "
                f"(this sost-jax reads version {STORE_VERSION})"
            )
        self.info: dict[str, Any] = self.manifest["info"]
        self.wave = np.load(self.root / "wave.npy")
        # The shard folders on disk are the truth: each appears atomically when complete.
        self.shards = shards_on_disk(self.root)
        digest = hashlib.sha256(manifest_bytes)
        digest.update(str(self.shards).encode())
        #: First 16 hex digits of the sha256 of the manifest and the list of shards on disk:
        #: it changes whenever the store's content does (a reusable input's identity).
        self.fingerprint = digest.hexdigest()[:16]
        dirs = [self.root / "shards" / shard_name(i) for i in self.shards]
        self._arrays = [
            {name: np.load(d / f"{name}.npy", mmap_mode="r") for name in _ARRAYS} for d in dirs
        ]
        self._dirs = dirs
        sizes = np.array([a["labels"].shape[0] for a in self._arrays], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)])
        metas = []
        for d in dirs:
            with np.load(d / "meta.npz") as z:
                metas.append({k: z[k] for k in z.files})
        keys = sorted(set().union(*[m.keys() for m in metas])) if metas else ["id"]
        self.meta: dict[str, np.ndarray] = {
            k: np.concatenate([m[k] for m in metas if k in m]) if metas else np.array([])
            for k in keys
        }

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def complete(self) -> bool:
        """True when every shard the writer announced is on disk."""
        n = self.manifest.get("n_shards")
        return n is not None and self.shards == list(range(n))

    @property
    def n_pixels(self) -> int:
        return int(self.wave.size)

    @property
    def labels(self) -> np.ndarray:
        """float32 [N, 3] labels of every spectrum (NaN where unknown)."""
        if not self._arrays:
            return np.zeros((0, 3), np.float32)
        return np.concatenate([np.asarray(a["labels"]) for a in self._arrays])

    def read(self, indices: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """Gather spectra by global index, in the order given.

        Parameters
        ----------
        indices : int [B]

        Returns
        -------
        dict with flux [B, P], weight [B, P], labels [B, 3] (float32).
        """
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a store of {len(self)} spectra")
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out = {  # aligned: the matcher uses them in place (sost_jax.runtime.memory)
            "flux": aligned_empty((idx.size, self.n_pixels), np.float32),
            "weight": aligned_empty((idx.size, self.n_pixels), np.float32),
            "labels": np.empty((idx.size, 3), np.float32),
        }
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            local = idx[sel] - self._starts[s]
            arrays = self._arrays[s]
            order = np.argsort(local, kind="stable")
            rows = local[order]
            if not _readable(arrays) or (np.diff(rows) == 0).any():
                for name in _ARRAYS:  # repeated rows: gathered from the memory map
                    out[name][sel[order]] = arrays[name][rows]
                continue
            direct = bool(np.all(np.diff(sel[order]) == 1))  # in order, one output block
            for name in _ARRAYS:
                if direct:
                    block = out[name][sel[order[0]] : sel[order[-1]] + 1]
                    _read_rows(arrays[name], rows, block)
                else:
                    tmp = np.empty((len(rows), *out[name].shape[1:]), out[name].dtype)
                    _read_rows(arrays[name], rows, tmp)
                    out[name][sel[order]] = tmp
        return out

    def iter_chunks(self, size: int, start: int = 0) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(first_index, read(range))`` in order, ``size`` spectra at a time."""
        for lo in range(start, len(self), size):
            yield lo, self.read(np.arange(lo, min(lo + size, len(self))))

    def failures(self) -> list[tuple[str, str]]:
        """(source, reason) of every input skipped during preparation."""
        rows: list[tuple[str, str]] = []
        for d in self._dirs:
            with open(d / "failures.csv", newline="") as fh:
                reader = csv.reader(fh)
                next(reader, None)
                rows.extend((r[0], r[1]) for r in reader)
        return rows
