"""Files -> a prepared store, in reader processes, in resumable shards.

Reading, air/vacuum, rest-frame shift, resampling and degrading (NumPy) and the batched,
jit-compiled normalisation (`sost_jax.data.prepare`) run in reader processes, chunk by chunk.
Preparing a store, the readers write each chunk's rows straight into its shard's files and the
calling process only completes the shards (labels, metadata); matching, the chunks come back to
the caller (`iter_prepared`). Finished shards appear atomically, so an interrupted preparation
resumes where it stopped. A file that cannot be used is skipped and listed with its reason in
the store; it never stops the run.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import loky
import numpy as np
from loky.process_executor import BrokenProcessPool
from tqdm.auto import tqdm

from sost_jax.data.io import read_raw
from sost_jax.data.io.checks import checked_rows, stacked
from sost_jax.data.prepare import (
    PrepareSettings,
    check_coverage,
    meta_columns,
    normalise_chunk,
    to_grid,
)
from sost_jax.data.spectra import RawSpectrum, ReadError
from sost_jax.data.store import PreparedStore, StoreWriter, write_rows
from sost_jax.errors import InputError
from sost_jax.runtime.memory import aligned_empty, keep_freed_memory


def read_to_grid(
    paths: Sequence[str], settings: PrepareSettings, reader: Callable | str = "auto"
) -> dict[str, Any]:
    """Read files and bring them onto the grid (the reader-process half of preparation).

    Files are read as stored (`sost_jax.data.io.read_raw`); those with the same number of pixels
    and medium are checked (`sost_jax.data.io.checks.checked_rows`) and resampled together, on
    one shared wavelength grid where their grids are equal byte for byte.

    Returns
    -------
    dict with flux, ivar [n, P] (64-byte aligned) of the usable files, meta (list of n dicts)
    and failures (list of (path, reason)).
    """

    read = partial(read_raw, fmt=reader) if isinstance(reader, str) else reader
    raws: list[RawSpectrum] = []
    failures: list[tuple[str, str]] = []
    for path in paths:
        try:
            raws.append(RawSpectrum(*read(path)))
        except ReadError as err:
            failures.append((str(path), str(err)))
        except Exception as err:  # one bad file never stops a batch
            failures.append((str(path), f"{type(err).__name__}: {err}"))
    groups: dict[tuple[int, Any], list[int]] = collections.defaultdict(list)
    for i, raw in enumerate(raws):
        groups[(len(raw.wave), raw.meta.get("medium"))].append(i)
    p = settings.wave.size
    flux = aligned_empty((len(raws), p))  # aligned: the normalisation takes them as they are
    ivar = aligned_empty((len(raws), p))
    flux[:], ivar[:] = 0.0, 0.0
    usable = np.zeros(len(raws), bool)
    for (_, medium), idx in groups.items():
        group = [raws[i] for i in idx]
        reasons: list[str | None] = [None] * len(group)
        try:
            wave, gflux, givar, reasons = checked_rows(
                _group_wave([r.wave for r in group]),
                stacked([r.flux for r in group]),
                stacked([r.ivar for r in group]),
                _group_bad([r.bad for r in group]),
            )
            ok = np.array([r is None for r in reasons])
            for raw, reason in zip(group, reasons, strict=True):
                if reason is not None:
                    path = raw.meta.get("path")
                    failures.append((str(path), f"{path}: {reason}"))
            rows = np.asarray(idx)[ok]
            if not rows.size:
                continue
            flux[rows], ivar[rows] = to_grid(
                wave if wave.ndim == 1 else wave[ok],
                gflux[ok],
                givar[ok],
                settings,
                z=np.array([r.meta.get("z") or 0.0 for r, k in zip(group, ok, strict=True) if k]),
                medium=medium,
            )
            usable[rows] = True
        except Exception as err:  # noqa: BLE001 - reported per file, the batch goes on
            for raw, reason in zip(group, reasons, strict=True):
                if reason is None:  # a file that failed a check is listed once, above
                    failures.append((str(raw.meta.get("path")), f"{type(err).__name__}: {err}"))
    keep = []
    for i, reason in enumerate(check_coverage(ivar, settings)):
        if not usable[i]:
            continue
        if reason:
            failures.append((str(raws[i].meta.get("path")), reason))
        else:
            keep.append(i)
    if len(keep) < len(raws):
        flux, ivar = (
            np.take(x, keep, axis=0, out=aligned_empty((len(keep), p))) for x in (flux, ivar)
        )
    return {
        "flux": flux,
        "ivar": ivar,
        "meta": [
            {k: v for k, v in raws[i].meta.items() if np.isscalar(v) or v is None} for i in keep
        ],
        "failures": failures,
    }


def _group_wave(waves: list[np.ndarray]) -> np.ndarray:
    """The group's wavelengths: [P] when every file has the same (a survey's shared grid;
    checked byte for byte), else [N, P]."""
    first = waves[0].tobytes()
    if all(w.dtype == waves[0].dtype and w.tobytes() == first for w in waves[1:]):
        return np.asarray(waves[0], np.float64)
    return stacked(waves, np.float64)


def _group_bad(bads: list[np.ndarray | None]) -> np.ndarray | None:
    """[N, P] bad-pixel marks of a group (0 where a file has none), or None if none has."""
    if all(b is None for b in bads):
        return None
    p = next(len(b) for b in bads if b is not None)
    return stacked([np.zeros(p, np.uint8) if b is None else b != 0 for b in bads], bool)


def prepare_chunk(
    paths: Sequence[str], settings: PrepareSettings, reader: str = "auto"
) -> dict[str, Any]:
    """Read, grid and normalise a chunk of files: the work of one reader process.

    Returns
    -------
    dict with ``flux``, ``weight`` [n, P] float32 (normalised), ``meta`` (n dicts) of the
    usable files, and ``failures`` (path, reason).
    """
    return normalise_chunk(read_to_grid(paths, settings, reader), settings)


def prepare_chunk_into(
    paths: Sequence[str],
    settings: PrepareSettings,
    reader: str,
    folder: str,
    first: int,
    capacity: int,
) -> dict[str, Any]:
    """`prepare_chunk`, its flux and weight written as rows ``first`` on of the shard being
    written in ``folder`` (`sost_jax.data.store.write_rows`, ``capacity`` rows).

    Returns
    -------
    dict with ``meta`` (n dicts) and ``failures`` (path, reason): what the caller needs to
    complete the shard (`StoreWriter.finish_shard`), without the pixels.
    """
    part = prepare_chunk(paths, settings, reader)
    for name in ("flux", "weight"):
        write_rows(folder, name, part[name], first, capacity)
    return {"meta": part["meta"], "failures": part["failures"]}


#: Seconds an idle reader process waits for more work before it ends.
READER_IDLE_S = 300


def _default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


def _start_reader() -> None:
    """Set up a reader process: JAX on the CPU only (on a GPU node the accelerators are the
    calling process's, and a reader must not claim their memory), keep freed buffers
    (`sost_jax.runtime.memory`), and keep compiled normalisations on disk (JAX's persistent cache,
    in ``$JAX_COMPILATION_CACHE_DIR`` or ``~/.cache/sost-jax/xla``), so that only the first
    pool ever compiles (~1 s per reader; later ones load it in milliseconds)."""
    import jax

    jax.config.update("jax_platforms", "cpu")
    keep_freed_memory()
    if not jax.config.jax_compilation_cache_dir:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        jax.config.update("jax_compilation_cache_dir", str(cache / "sost-jax" / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def in_readers(
    fn: Callable[..., Any], calls: Iterable[tuple[Any, tuple]], workers: int | None = None
) -> Iterator[tuple[Any, Any]]:
    """``(key, fn(*args))`` for each ``(key, args)`` of ``calls``, in order, computed by the
    reader processes up to ``2 * workers`` calls ahead of the caller (see `iter_prepared`);
    ``workers=0`` (or a single call) computes them here."""
    workers = _default_workers() if workers is None else workers
    calls = list(calls)
    if workers == 0 or len(calls) < 2:
        for key, args in calls:
            yield key, fn(*args)
        return
    pool = loky.get_reusable_executor(workers, timeout=READER_IDLE_S, initializer=_start_reader)
    window: collections.deque[tuple[Any, Future]] = collections.deque()
    try:
        for key, args in calls:
            window.append((key, pool.submit(fn, *args)))
            if len(window) > 2 * workers:
                k, fut = window.popleft()
                yield k, fut.result()
        while window:
            k, fut = window.popleft()
            yield k, fut.result()
    except BrokenProcessPool as err:
        raise RuntimeError(
            f"a reader process died ({err}); finished parts are kept, run again to resume "
            "(data.workers=0 reads in this process)"
        ) from err
    finally:
        for _, fut in window:
            fut.cancel()


def iter_prepared(
    tasks: Iterable[tuple[Any, Sequence[str]]],
    settings: PrepareSettings,
    labels: Mapping[str, Sequence[float]] | None = None,
    reader: str = "auto",
    workers: int | None = None,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Read, grid and normalise chunks of files; yields ``(key, chunk)`` in task order.

    Reader processes read, grid and normalise whole chunks (`prepare_chunk`), up to
    ``2 * workers`` chunks ahead of the caller, which only attaches labels and consumes them
    (matches them; `prepare_files` has the readers write them instead). Processes, not
    threads: reading FITS headers is Python work that threads serialise on the interpreter
    lock, and the normalisation in the calling process competed with the readers for the
    cores (measured on 2 cores: 2200 spectra/s with reader threads, 1900-2700 with reader
    processes normalising in the caller, 3300-3900 normalising in the readers). The readers
    are loky's reusable processes: started (JAX imported, the normalisation compiled or
    loaded from the persistent cache) by the first call in a process, kept for the next
    calls, and ended after ``READER_IDLE_S`` idle seconds.

    Parameters
    ----------
    tasks : iterable of (key, paths)
        A chunk of files per task; ``key`` is handed back with its result.
    settings, labels, reader, workers
        As `prepare_files`.

    Yields
    ------
    key, dict
        ``flux``, ``weight`` [n, P] float32 (normalised), ``labels`` [n, 3] float32,
        ``meta`` (n dicts) of the usable files, and ``failures`` (path, reason).
    """
    calls = ((key, (chunk, settings, reader)) for key, chunk in tasks)
    for key, part in in_readers(prepare_chunk, calls, workers):
        yield key, {**part, "labels": _labels_of(part["meta"], labels)}


def _labels_of(
    metas: Sequence[Mapping[str, Any]], labels: Mapping[str, Sequence[float]] | None
) -> np.ndarray:
    """float32 [n, 3] ``labels`` looked up by each meta's id (NaN where unknown)."""
    lab = np.full((len(metas), 3), np.nan, np.float32)
    if labels is not None:
        for i, m in enumerate(metas):
            if str(m.get("id")) in labels:
                lab[i] = labels[str(m["id"])]
    return lab


def _finish_shard(
    writer: StoreWriter,
    shard: int,
    parts: Sequence[tuple[int, Mapping[str, Any]]],
    labels: Mapping[str, Sequence[float]] | None,
) -> None:
    """Complete a shard whose chunks (first row, `prepare_chunk_into` result) are all in."""
    parts = sorted(parts, key=lambda p: p[0])
    metas = [m for _, p in parts for m in p["meta"]]
    writer.finish_shard(
        shard,
        [(first, len(p["meta"])) for first, p in parts],
        _labels_of(metas, labels),
        meta_columns(metas),
        [f for _, p in parts for f in p["failures"]],
    )


def prepare_files(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: PrepareSettings,
    labels: Mapping[str, Sequence[float]] | None = None,
    reader: str = "auto",
    workers: int | None = None,
    shard_size: int = 4096,
    chunk_size: int = 256,
    progress: bool = True,
) -> PreparedStore:
    """Prepare spectrum files into a store, in parallel, resumably.

    Parameters
    ----------
    paths : list of paths
        Spectrum files (LAMOST or generic 1-D FITS, see `sost_jax.data.io`). Their order defines
        the shards, so resuming needs the same list.
    out_dir : path
        Store directory; a partly written store with the same settings is resumed.
    settings : PrepareSettings
        Grid, resolution and normalisation.
    labels : dict id -> (Teff [K], log g [dex], [Fe/H] [dex]), optional
        Reference labels, matched on the reader's ``id``; NaN for spectra not in it.
    reader : str
        "auto", "lamost" or "fits1d".
    workers : int, optional
        Reader processes (0 reads in the calling thread). Default: the number of cores.
    shard_size, chunk_size : int
        Spectra per shard on disk and per task handed to a worker.
    progress : bool
        Show a progress bar with spectra/s.

    Returns
    -------
    PreparedStore
        The finished store; ``store.failures()`` lists skipped files with reasons.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no input files to prepare")
    info = {
        "source": "files",
        "reader": reader,
        "n_inputs": len(paths),
        "preprocess": settings.to_dict(),
    }
    writer = StoreWriter(out_dir, settings.wave, info, n_shards=-(-len(paths) // shard_size))
    done = writer.done_shards()
    tasks = []  # ((shard, first row), (paths, settings, reader, folder, first row, capacity))
    for s in range(-(-len(paths) // shard_size)):
        if s in done:
            continue
        folder = str(writer.clear_partial(s))
        lo_s, hi_s = s * shard_size, min((s + 1) * shard_size, len(paths))
        for lo in range(lo_s, hi_s, chunk_size):
            chunk = paths[lo : min(lo + chunk_size, hi_s)]
            args = (chunk, settings, reader, folder, lo - lo_s, hi_s - lo_s)
            tasks.append(((s, lo - lo_s), args))
    chunks_per_shard = collections.Counter(s for (s, _), _ in tasks)
    bar = tqdm(
        total=len(paths),
        initial=len(paths) - sum(len(args[0]) for _, args in tasks),
        unit="spec",
        disable=not progress,
        desc="prepare",
        smoothing=0.1,
    )
    pending: dict[int, list[tuple[int, dict[str, Any]]]] = collections.defaultdict(list)
    # The readers write their rows into the shard's files; this process completes each shard
    # (labels, metadata, dropping the rows of skipped files) in a thread, one at a time, so
    # that this loop keeps taking chunks from the readers meanwhile.
    with ThreadPoolExecutor(1) as disk:
        writing: Future | None = None
        for (shard, first), part in in_readers(prepare_chunk_into, tasks, workers):
            pending[shard].append((first, part))
            bar.update(len(part["meta"]) + len(part["failures"]))
            if len(pending[shard]) == chunks_per_shard[shard]:
                if writing is not None:
                    writing.result()
                writing = disk.submit(_finish_shard, writer, shard, pending.pop(shard), labels)
        if writing is not None:
            writing.result()
    bar.close()
    return PreparedStore(out_dir)
