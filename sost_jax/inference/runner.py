"""Survey inference: spectra -> chi2 template matching -> a catalogue (FITS and CSV).

`infer_files` reads spectrum files (LAMOST or 1-D FITS), brings them onto the library's grid and
normalises them exactly as `sost_jax.data.prepare_files` does, matches them against a template
library (`sost_jax.inference.matching`) and writes one catalogue row per usable spectrum;
`infer_store` does the same from a prepared store. No pixel data is written: a survey of millions of
spectra needs only its catalogue on disk.

The work is cut into parts of ``chunk_size`` inputs. Each finished part is written to its
own file atomically, so an interrupted run (killed, out of time) continues where it
stopped when started again with the same inputs and settings; the catalogue itself is
written only at the end, again atomically, so it is never half-written. Files that cannot
be used are listed with the reason in ``failures.csv`` and never stop a run.

Layout of an output folder::

    run.json              inputs (number, sha256 of their list), library (sha256 of its
                          arrays, provenance), preprocessing and matching settings
    parts/part-00000.npz  catalogue columns of inputs [0, chunk_size) and their failures
    catalogue.fits        all parts (binary table; flag bits described in the header)
    catalogue.csv         the same table as text
    failures.csv          source, reason

In multi-process runs (`jax.distributed`), process ``i`` of ``n`` takes the parts
``i, i + n, ...`` on its own devices; process 0 then gathers them into the catalogue.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from sost_jax.data.prepare import PrepareSettings, meta_columns
from sost_jax.data.prepare_files import iter_prepared
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.inference.catalogue import library_hash, write_catalogue
from sost_jax.inference.estimate import Estimator, InferSettings, empty_rows, open_library
from sost_jax.inference.flags import MatchFlag
from sost_jax.library.templates import Library
from sost_jax.runtime.files import replacing, write_text
from sost_jax.runtime.memory import aligned_empty

RUN_VERSION = 1


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def inputs_hash(paths: Sequence[str]) -> str:
    """sha256 of a list of input paths (the run record's ``inputs.sha256``)."""
    return _sha256("\n".join(paths).encode())


def is_current(
    out_dir: str | os.PathLike, library: Library | str | os.PathLike, paths: Sequence[str]
) -> bool:
    """Whether the catalogue run in ``out_dir`` (if any) was started with this library and
    these input files, so that `infer_files` would resume it rather than refuse it."""
    path = Path(out_dir) / "run.json"
    if not path.exists():
        return True
    record = json.loads(path.read_text())
    return record["library"]["sha256"] == library_hash(open_library(library)) and record["inputs"][
        "sha256"
    ] == inputs_hash([str(p) for p in paths])


def _check_run(out: Path, record: Mapping[str, Any]) -> None:
    """Write run.json, or check that a run already started here had the same record."""
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(record)):
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise InputError(
                f"{out} holds a run started with other {', '.join(diff)}; resume it with the "
                "same inputs and settings, or choose a new output folder"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=1, sort_keys=True))


def part_path(out: Path, index: int) -> Path:
    return out / "parts" / f"part-{index:05d}.npz"


def _write_part(out: Path, index: int, columns: Mapping[str, np.ndarray], failures) -> None:
    path = part_path(out, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    fail = np.array([[str(s), str(r)] for s, r in failures], dtype=str).reshape(-1, 2)
    with replacing(path) as tmp:
        np.savez(tmp, **{f"col_{k}": v for k, v in columns.items()}, failures=fail)


def _read_part(path: Path) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    with np.load(path) as z:
        cols = {k[4:]: z[k] for k in z.files if k.startswith("col_")}
        fail = [(str(s), str(r)) for s, r in z["failures"]]
    return cols, fail


class _Parts:
    """Dispatches parts to the estimator and writes each one when its results are back,
    one part behind, so reading the next part overlaps matching the current one."""

    def __init__(self, out: Path, estimator: Estimator, bar: tqdm, with_ref: bool):
        self.out, self.estimator, self.bar, self.with_ref = out, estimator, bar, with_ref
        self.pending: tuple | None = None
        self.rows = 0

    def submit(self, index: int, flux, weight, labels, meta, failures) -> None:
        handle = self.estimator.dispatch(flux, weight)
        self.flush()
        self.pending = (index, handle, flux, weight, labels, meta, failures)

    def flush(self) -> None:
        if self.pending is None:
            return
        index, handle, flux, weight, labels, meta, failures = self.pending
        cols = self.estimator.columns(handle, flux, weight, labels, meta, self.with_ref)
        _write_part(self.out, index, cols, failures)
        self.rows += labels.shape[0]
        self.bar.update(labels.shape[0] + len(failures))
        self.pending = None


def _check_grid(wave: np.ndarray, library: Library, what: str) -> None:
    if wave.shape != library.wave.shape or not np.allclose(wave, library.wave, atol=1e-6):
        raise InputError(
            f"the {what} grid ({wave.size} pixels, {wave[0]:g}-{wave[-1]:g} Å) differs from "
            f"the library's ({library.n_pixels} pixels, {library.wave[0]:g}-"
            f"{library.wave[-1]:g} Å); set the preprocess grid to the library's"
        )


def _rows_aligned(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate [n_i, P] blocks into memory the matcher uses in place on CPUs."""
    out = aligned_empty((sum(len(b) for b in blocks), blocks[0].shape[1]), np.float32)
    return np.concatenate(blocks, out=out)


def _my_parts(out: Path, n_parts: int) -> list[int]:
    n_proc, pid = jax.process_count(), jax.process_index()
    return [i for i in range(n_parts) if i % n_proc == pid and not part_path(out, i).exists()]


def _progress(total: int, done: int, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=done,
        unit=" spectra",
        unit_scale=True,
        desc="infer",
        disable=not progress,
        smoothing=0.1,
    )


def _start_run(
    out: Path,
    library: Library,
    settings: InferSettings,
    mesh: Mesh | None,
    inputs: Mapping[str, Any],
    **extra: Any,
) -> tuple[Estimator, dict[str, Any]]:
    """The estimator of a run and its record (run.json), written or checked against the
    record of a run already started in ``out`` (`_check_run`).

    ``inputs`` describes what is read (kind, number, fingerprint); ``extra`` adds entries
    (the preprocessing of files, ...); a fit stage adds its settings as ``fit``.
    """
    record = {
        "version": RUN_VERSION,
        "inputs": dict(inputs),
        "library": {"sha256": library_hash(library), "kind": library.meta.get("kind")},
        **extra,
        "infer": settings.record(),
    }
    estimator = Estimator(library, settings, mesh)
    if estimator.fit is not None:
        record["fit"] = estimator.fit.record()
    _check_run(out, record)
    return estimator, record


def _file_tasks(
    paths: Sequence[str], parts: Sequence[int], part_size: int, read_chunk: int
) -> list[tuple[tuple[int, int], Sequence[str]]]:
    """Reader tasks ``((part, first input), paths)`` of the parts to do: each part's inputs
    ``[part * part_size, (part + 1) * part_size)`` in chunks of at most ``read_chunk``."""
    n = len(paths)
    return [
        ((i, lo), paths[lo : min(lo + read_chunk, (i + 1) * part_size, n)])
        for i in parts
        for lo in range(i * part_size, min((i + 1) * part_size, n), read_chunk)
    ]


def _whole_parts(
    tasks: Sequence[tuple[tuple[int, int], Sequence[str]]],
    prepared: Iterable[tuple[tuple[int, int], dict[str, Any]]],
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(part, chunks)`` as soon as every chunk of a part has come from the readers
    (``prepared``: `sost_jax.data.prepare.iter_prepared` over ``tasks``), chunks in order."""
    chunks_left = Counter(i for (i, _), _ in tasks)
    gathered: dict[int, list[dict[str, Any]]] = {i: [] for i in chunks_left}
    for (i, _), chunk in prepared:
        gathered[i].append(chunk)
        chunks_left[i] -= 1
        if not chunks_left[i]:
            yield i, gathered.pop(i)


def _joined(
    chunks: Sequence[Mapping[str, Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], list[tuple[str, str]]]:
    """One part's (flux, weight [n, P] in memory the matcher uses in place, labels [n, 3],
    meta columns, failures) from its prepared chunks."""
    metas = [m for c in chunks for m in c["meta"]]
    return (
        _rows_aligned([c["flux"] for c in chunks]),
        _rows_aligned([c["weight"] for c in chunks]),
        np.concatenate([c["labels"] for c in chunks]),
        meta_columns(metas) if metas else {},
        [f for c in chunks for f in c["failures"]],
    )


def infer_files(
    paths: Sequence[str | os.PathLike],
    library: Library | str | os.PathLike,
    out_dir: str | os.PathLike,
    prepare: PrepareSettings,
    settings: InferSettings | None = None,
    *,
    labels: Mapping[str, Sequence[float]] | None = None,
    reader: str = "auto",
    workers: int | None = None,
    read_chunk: int = 256,
    mesh: Mesh | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Estimate Teff, log g, [Fe/H] of every spectrum file; write the catalogue.

    Parameters
    ----------
    paths : list of paths
        Spectrum files; their order defines the parts, so resuming needs the same list.
    library : Library or path of a library FITS file
        Templates on the grid of ``prepare``.
    out_dir : path
        Output folder (see the module docstring); a run started there is resumed.
    prepare : PrepareSettings
        Grid, resolution and normalisation: the library's.
    settings : InferSettings
        Matching settings and part size.
    labels : dict id -> (Teff [K], log g [dex], [Fe/H] [dex]), optional
        Reference labels, written as ``ref_teff``, ``ref_logg``, ``ref_feh`` (NaN elsewhere).
    reader : str
        "auto", "lamost" or "fits1d".
    workers : int, optional
        Reader processes (default one per core, at most 8).
    read_chunk : int
        Files per task handed to a reader process.
    mesh : Mesh, optional
        Devices to match on; default all local devices.
    progress : bool
        Progress bar with spectra/s.

    Returns
    -------
    dict
        ``catalogue`` (FITS path), ``csv``, ``failures`` (CSV path), ``n_rows``,
        ``n_failures``, ``flag_counts`` (flag name -> rows with that bit), ``seconds`` and
        ``spectra_per_s`` of this call (0 when nothing was left to do).
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no input files")
    settings = InferSettings() if settings is None else settings
    library = open_library(library)
    _check_grid(prepare.wave, library, "preprocessing")
    out = Path(out_dir)
    estimator, record = _start_run(
        out,
        library,
        settings,
        mesh,
        {"kind": "files", "n": len(paths), "sha256": inputs_hash(paths)},
        preprocess=prepare.to_dict(),
        reader=reader,
        labels=None if labels is None else _sha256(json.dumps(sorted(labels)).encode())[:16],
    )
    n_parts = -(-len(paths) // settings.chunk_size)
    todo = _my_parts(out, n_parts)
    t0 = time.perf_counter()
    done_now = 0
    if todo:
        tasks = _file_tasks(paths, todo, settings.chunk_size, read_chunk)
        n_todo = sum(len(c) for _, c in tasks)
        bar = _progress(len(paths), len(paths) - n_todo, progress)
        writer = _Parts(out, estimator, bar, labels is not None)
        prepared = iter_prepared(tasks, prepare, labels, reader, workers)
        for i, chunks in _whole_parts(tasks, prepared):
            writer.submit(i, *_joined(chunks))
        writer.flush()
        bar.close()
        done_now = n_todo
    return _finish(out, n_parts, library, record, done_now, time.perf_counter() - t0)


def infer_store(
    store: PreparedStore | str | os.PathLike,
    library: Library | str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: InferSettings | None = None,
    *,
    mesh: Mesh | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`infer_files` for the spectra of a prepared store (already on the library's grid).

    The store's labels become the ``ref_*`` columns. Returns the same summary.
    """
    store = store if isinstance(store, PreparedStore) else PreparedStore(store)
    settings = InferSettings() if settings is None else settings
    library = open_library(library)
    _check_grid(store.wave, library, "store's")
    out = Path(out_dir)
    inputs = {
        "kind": "store",
        "n": len(store),
        "root": str(store.root.absolute()),
        "sha256": store.fingerprint,
    }
    estimator, record = _start_run(out, library, settings, mesh, inputs)
    n_parts = -(-len(store) // settings.chunk_size)
    with_ref = bool(np.isfinite(store.labels).any())
    failures = store.failures()
    if failures and jax.process_index() == 0 and not part_path(out, n_parts).exists():
        # The store's own skipped inputs, listed with the catalogue's failures.
        _write_part(out, n_parts, empty_rows(with_ref, estimator.fit is not None), failures)
    todo = _my_parts(out, n_parts)
    t0 = time.perf_counter()
    done_now = 0
    if todo:
        size = settings.chunk_size
        n_todo = sum(min((i + 1) * size, len(store)) - i * size for i in todo)
        bar = _progress(len(store), len(store) - n_todo, progress)
        writer = _Parts(out, estimator, bar, with_ref)
        for i in todo:
            rows = np.arange(i * size, min((i + 1) * size, len(store)))
            arrays = store.read(rows)
            meta = {k: np.asarray(v)[rows] for k, v in store.meta.items()}
            writer.submit(i, arrays["flux"], arrays["weight"], arrays["labels"], meta, [])
        writer.flush()
        bar.close()
        done_now = n_todo
    return _finish(out, n_parts, library, record, done_now, time.perf_counter() - t0)


def _all_parts(out: Path) -> list[Path]:
    return sorted((out / "parts").glob("part-[0-9][0-9][0-9][0-9][0-9].npz"))


def _finish(
    out: Path,
    n_parts: int,
    library: Library,
    record: Mapping[str, Any],
    done_now: int,
    seconds: float,
) -> dict[str, Any]:
    """Gather the parts into the catalogue (process 0, once every part is on disk)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("sost_jax.inference.catalogue parts written")
    summary: dict[str, Any] = {
        "catalogue": str(out / "catalogue.fits"),
        "csv": str(out / "catalogue.csv"),
        "failures": str(out / "failures.csv"),
        "seconds": seconds,
        "spectra_per_s": done_now / seconds if done_now and seconds > 0 else 0.0,
    }
    if jax.process_index() != 0:
        return summary
    missing = [i for i in range(n_parts) if not part_path(out, i).exists()]
    if missing:
        raise RuntimeError(f"{out}: parts {missing[:5]} are missing; run again to finish them")
    columns: dict[str, list[np.ndarray]] = {}
    failures: list[tuple[str, str]] = []
    for path in _all_parts(out):
        cols, fail = _read_part(path)
        failures += fail
        for k, v in cols.items():
            columns.setdefault(k, []).append(v)
    table = {k: np.concatenate(v) for k, v in columns.items()}
    write_catalogue(out, table, library, record)
    _write_failures(out / "failures.csv", failures)
    summary["n_rows"] = int(table["teff"].size)
    summary["n_failures"] = len(failures)
    summary["flag_counts"] = {
        flag.name: int(((table["flags"] & flag.value) > 0).sum()) for flag in MatchFlag if flag
    }
    return summary


def _write_failures(path: Path, failures: Sequence[tuple[str, str]]) -> None:
    with replacing(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "reason"])
        w.writerows(failures)


def iter_parts(out_dir: str | os.PathLike) -> Iterator[dict[str, np.ndarray]]:
    """The catalogue columns of each finished part of a run, in order (also mid-run)."""
    for path in _all_parts(Path(out_dir)):
        yield _read_part(path)[0]
