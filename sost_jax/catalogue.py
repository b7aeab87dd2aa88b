"""Survey inference: spectra -> chi2 template matching -> a catalogue (FITS and CSV).

`infer_files` reads spectrum files (LAMOST or 1-D FITS), brings them onto the library's
grid and normalises them exactly as `sost_jax.prepare` does, matches them against a template
library (`sost_jax.matching`) and writes one catalogue row per usable spectrum;
`infer_store` does the same from a prepared store. No pixel data is written: a survey of
millions of spectra needs only its catalogue on disk.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from sost_jax.constants import LABEL_NAMES
from sost_jax.devices import data_mesh
from sost_jax.errors import InputError
from sost_jax.files import replacing, write_text
from sost_jax.fitstage import FIT_COLUMNS, FitStage, empty_fit_columns, fit_emulator_path
from sost_jax.fitting import FitSettings
from sost_jax.library import Library, read_library
from sost_jax.matching import Matcher, MatchFlag, make_matcher
from sost_jax.memory import aligned_empty
from sost_jax.prepare import UNPHYSICAL_KEY, PrepareSettings, iter_prepared, meta_columns
from sost_jax.settings import from_mapping
from sost_jax.store import PreparedStore

RUN_VERSION = 1
ESTIMATE_COLUMNS = (
    "teff",
    "teff_err",
    "logg",
    "logg_err",
    "feh",
    "feh_err",
    "chi2_best",
    "chi2_reduced",
    "n_good",
    "best_index",
    "flags",
)
METHODS = ("grid", "fit")
UNITS = {
    "ra": "deg",
    "dec": "deg",
    "teff": "K",
    "teff_err": "K",
    "teff_err_formal": "K",
    "ref_teff": "K",
    "rv": "km s-1",
    "rv_err": "km s-1",
    **{f"{n}{s}": "dex" for n in ("logg", "feh") for s in ("", "_err", "_err_formal")},
    "ref_logg": "dex",
    "ref_feh": "dex",
}
"""Units of catalogue columns (TUNITn of the FITS table; "dex" written as the string that
TOPCAT and astropy show, though the FITS standard has no dex)."""


@dataclass(frozen=True)
class InferSettings:
    """How targets are matched and how the work is cut.

    Attributes
    ----------
    k : int
        Best templates kept per target; the two best give the estimate (paper), all k the
        uncertainty (`sost_jax.matching.estimate`).
    chunk_size : int
        Inputs per part (the unit of resumption) and per matcher call.
    free_scale : bool
        Fit a multiplicative scale per target and template.
    poor_fit : float
        Flag POOR_FIT above this reduced chi2.
    min_fraction : float
        Flag FEW_PIXELS below this fraction of pixels with data.
    edge_steps : float
        Flag EDGE within this many library grid steps of its edge.
    method : str
        "grid": the paper's two-best estimate; "fit": that estimate, then a continuous fit
        through the library's emulator (`sost_jax.fitstage`, settings in ``fit``).
    fit : dict
        `sost_jax.fitting.FitSettings` of the fit.
    """

    k: int = 10
    chunk_size: int = 4096
    free_scale: bool = False
    poor_fit: float = 3.0
    min_fraction: float = 0.5
    edge_steps: float = 1.0
    method: str = "grid"
    fit: Mapping[str, Any] = field(default_factory=lambda: FitSettings().to_dict())

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"infer.method must be one of {METHODS}, got {self.method!r}")
        object.__setattr__(self, "fit", FitSettings.from_dict(dict(self.fit)).to_dict())
        if int(self.k) < 2:
            raise InputError(f"infer.k must be >= 2 (the two-best rule), got {self.k}")
        if int(self.chunk_size) < 1:
            raise InputError(f"infer.chunk_size must be >= 1, got {self.chunk_size}")
        if not self.poor_fit > 0:
            raise InputError(f"infer.poor_fit must be > 0, got {self.poor_fit}")
        if not 0 <= self.min_fraction <= 1:
            raise InputError(f"infer.min_fraction must be in [0, 1], got {self.min_fraction}")
        if not self.edge_steps >= 0:
            raise InputError(f"infer.edge_steps must be >= 0, got {self.edge_steps}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferSettings:
        return from_mapping(cls, d, "infer settings")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fit_settings(self) -> FitSettings:
        return FitSettings.from_dict(dict(self.fit))

    def record(self) -> dict[str, Any]:
        """The settings a run record keeps: without ``method`` and ``fit`` for the grid
        method, so that its runs resume across versions and fit settings."""
        d = self.to_dict()
        if self.method == "grid":
            del d["method"], d["fit"]
        return d


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def inputs_hash(paths: Sequence[str]) -> str:
    """sha256 of a list of input paths (the run record's ``inputs.sha256``)."""
    return _sha256("\n".join(paths).encode())


def library_hash(library: Library) -> str:
    """sha256 of a library's flux, labels and wavelengths (first 16 hex digits)."""
    arrays = (library.flux, library.labels, library.wave)
    return _sha256(*(np.ascontiguousarray(a).tobytes() for a in arrays))[:16]


def is_current(
    out_dir: str | os.PathLike, library: Library | str | os.PathLike, paths: Sequence[str]
) -> bool:
    """Whether the catalogue run in ``out_dir`` (if any) was started with this library and
    these input files, so that `infer_files` would resume it rather than refuse it."""
    path = Path(out_dir) / "run.json"
    if not path.exists():
        return True
    record = json.loads(path.read_text())
    return record["library"]["sha256"] == library_hash(_open_library(library)) and record["inputs"][
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


def _identity_columns(meta: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """id, obsid, ra, dec, snr and source of n spectra from their meta columns.

    ``snr`` is the meta's ``snr`` when present, else LAMOST's g-band S/N (``snr_g``).
    """

    def numeric(name: str) -> np.ndarray:
        v = meta.get(name)
        if v is None or np.asarray(v).dtype.kind not in "fiu":
            return np.full(n, np.nan)
        return np.asarray(v, np.float64)

    ids = meta.get("id")
    obsid = numeric("obsid")
    snr = numeric("snr") if "snr" in meta else numeric("snr_g")
    source = meta.get("path", meta.get("source"))
    return {
        "id": np.arange(n).astype(str) if ids is None else np.asarray(ids).astype(str),
        "obsid": np.where(np.isfinite(obsid), obsid, -1).astype(np.int64),
        "ra": numeric("ra"),
        "dec": numeric("dec"),
        "snr": snr.astype(np.float32),
        "source": np.full(n, "") if source is None else np.asarray(source).astype(str),
    }


def _catalogue_rows(
    meta: Mapping[str, np.ndarray],
    labels: np.ndarray,
    found: Mapping[str, np.ndarray],
    with_ref: bool,
) -> dict[str, np.ndarray]:
    """One part's catalogue columns: identity, estimates (and a fit's columns), flags (and
    reference labels)."""
    n = labels.shape[0]
    cols = _identity_columns(meta, n)
    for name in ESTIMATE_COLUMNS + tuple(n for n in FIT_COLUMNS if n in found):
        cols[name] = np.asarray(found[name])
    if UNPHYSICAL_KEY in meta and n:  # found by preparation (`sost_jax.prepare`)
        bad = np.asarray(meta[UNPHYSICAL_KEY], np.float64) == 1
        flag = np.where(bad, MatchFlag.UNPHYSICAL_FLUX.value, 0).astype(cols["flags"].dtype)
        cols["flags"] = cols["flags"] | flag
    if with_ref:
        for i, name in enumerate(LABEL_NAMES):
            cols[f"ref_{name}"] = np.asarray(labels[:, i], np.float32)
    return cols


def _empty_rows(with_ref: bool, fit: bool) -> dict[str, np.ndarray]:
    ints = ("n_good", "best_index", "flags")
    found = {n: np.zeros(0, np.int32 if n in ints else np.float32) for n in ESTIMATE_COLUMNS}
    if fit:
        found.update(empty_fit_columns())
    return _catalogue_rows({}, np.zeros((0, 3), np.float32), found, with_ref)


class Estimator:
    """The in-memory inference core: prepared spectra in, catalogue columns out.

    Holds a library's matcher (compiled once) and, with ``settings.method == "fit"``, its
    fit stage. The resumable runners (`infer_files`, `infer_store`), the Python API and the
    demo all estimate through it; it writes nothing.

    Parameters
    ----------
    library : Library or path of a library FITS file
    settings : InferSettings, optional
    mesh : Mesh, optional
        Devices to match on; default all local devices.
    """

    def __init__(
        self,
        library: Library | str | os.PathLike,
        settings: InferSettings | None = None,
        mesh: Mesh | None = None,
    ):
        self.library = _open_library(library)
        self.settings = InferSettings() if settings is None else settings
        self.fit = _make_fit(self.library, self.settings, mesh)
        self._mesh = mesh
        self._matcher: Matcher | None = None

    @property
    def matcher(self) -> Matcher:
        """The chi2 matcher, built on first use (runs with nothing left to do need none)."""
        if self._matcher is None:
            self._matcher = _make_matcher(self.library, self.settings, self._mesh)
        return self._matcher

    def dispatch(self, flux: np.ndarray, weight: np.ndarray) -> Any:
        """Start matching [n, P] spectra on the devices; `columns` finishes them."""
        return self.matcher.dispatch(flux, weight, self.settings.chunk_size) if len(flux) else None

    def columns(
        self,
        handle: Any,
        flux: np.ndarray,
        weight: np.ndarray,
        labels: np.ndarray,
        meta: Mapping[str, np.ndarray],
        with_ref: bool,
    ) -> dict[str, np.ndarray]:
        """The catalogue columns of spectra whose match `dispatch` started (``handle``):
        the grid estimates, the fit from them when asked, identity and flag columns, and
        ``ref_*`` from ``labels`` [n, 3] when ``with_ref``."""
        if handle is None:
            return _empty_rows(with_ref, self.fit is not None)
        found = Matcher.fetch(handle)
        if self.fit is not None:
            found = self.fit(flux, weight, found)
        return _catalogue_rows(meta, labels, found, with_ref)

    def __call__(
        self,
        flux: np.ndarray,
        weight: np.ndarray,
        meta: Mapping[str, np.ndarray] | None = None,
        labels: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Catalogue columns of prepared spectra (flux, weight [n, P] on the library's grid;
        meta columns [n]; reference labels [n, 3] give ``ref_*`` columns)."""
        flux, weight = np.asarray(flux, np.float32), np.asarray(weight, np.float32)
        _check_grid_size(flux, self.library)
        n = flux.shape[0]
        meta = {"id": np.arange(n).astype(str)} if meta is None else meta
        with_ref = labels is not None
        labels = np.full((n, 3), np.nan, np.float32) if labels is None else np.asarray(labels)
        size = self.settings.chunk_size
        blocks = []
        for lo in range(0, n, size):
            rows = slice(lo, min(lo + size, n))
            part = {k: np.asarray(v)[rows] for k, v in meta.items()}
            f, w = flux[rows], weight[rows]
            blocks.append(self.columns(self.dispatch(f, w), f, w, labels[rows], part, with_ref))
        if not blocks:
            return _empty_rows(with_ref, self.fit is not None)
        return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _check_grid_size(flux: np.ndarray, library: Library) -> None:
    if flux.ndim != 2 or flux.shape[1] != library.n_pixels:
        raise InputError(
            f"spectra of shape {flux.shape} do not fit the library's {library.n_pixels} pixels"
        )


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


def _open_library(library: Library | str | os.PathLike) -> Library:
    return library if isinstance(library, Library) else read_library(library)


def _check_grid(wave: np.ndarray, library: Library, what: str) -> None:
    if wave.shape != library.wave.shape or not np.allclose(wave, library.wave, atol=1e-6):
        raise InputError(
            f"the {what} grid ({wave.size} pixels, {wave[0]:g}-{wave[-1]:g} Å) differs from "
            f"the library's ({library.n_pixels} pixels, {library.wave[0]:g}-"
            f"{library.wave[-1]:g} Å); set the preprocess grid to the library's"
        )


def library_steps(library: Library) -> tuple[float, float, float] | None:
    """The cell size [K, dex, dex] a library was drawn on (``meta["grid"]``, written by
    `sost_jax.library.make_libraries`), or None for others (regular grids)."""
    grid = library.meta.get("grid")
    if not isinstance(grid, Mapping):
        return None
    try:
        return tuple(float(grid[f"{name}_step"]) for name in LABEL_NAMES)
    except (KeyError, TypeError, ValueError):
        return None


def _make_matcher(library: Library, settings: InferSettings, mesh: Mesh | None) -> Matcher:
    """The matcher of a library; ``k`` is capped at the number of templates."""
    if len(library) < 2:
        raise InputError(f"the library holds {len(library)} templates; the rule needs 2")
    return make_matcher(
        library.flux,
        library.labels,
        min(settings.k, len(library)),
        data_mesh(local=True) if mesh is None else mesh,
        settings.free_scale,
        poor_fit=settings.poor_fit,
        min_fraction=settings.min_fraction,
        edge_steps=settings.edge_steps,
        label_steps=library_steps(library),
    )


def _make_fit(library: Library, settings: InferSettings, mesh: Mesh | None) -> FitStage | None:
    """The fit stage of ``infer.method = "fit"`` (None for "grid")."""
    if settings.method != "fit":
        return None
    mesh = data_mesh(local=True) if mesh is None else mesh
    path = fit_emulator_path(library.meta)
    return FitStage(path, library.wave, settings.fit_settings, mesh, settings.chunk_size)


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
    library = _open_library(library)
    _check_grid(prepare.wave, library, "preprocessing")
    out = Path(out_dir)
    record = {
        "version": RUN_VERSION,
        "inputs": {"kind": "files", "n": len(paths), "sha256": inputs_hash(paths)},
        "library": {"sha256": library_hash(library), "kind": library.meta.get("kind")},
        "preprocess": prepare.to_dict(),
        "infer": settings.record(),
        "reader": reader,
        "labels": None if labels is None else _sha256(json.dumps(sorted(labels)).encode())[:16],
    }
    estimator = Estimator(library, settings, mesh)
    if estimator.fit is not None:
        record["fit"] = estimator.fit.record()
    _check_run(out, record)
    n_parts = -(-len(paths) // settings.chunk_size)
    todo = _my_parts(out, n_parts)
    t0 = time.perf_counter()
    if todo:
        size = settings.chunk_size
        tasks = [
            ((i, lo), paths[lo : min(lo + read_chunk, (i + 1) * size, len(paths))])
            for i in todo
            for lo in range(i * size, min((i + 1) * size, len(paths)), read_chunk)
        ]
        n_todo = sum(len(c) for _, c in tasks)
        bar = _progress(len(paths), len(paths) - n_todo, progress)
        writer = _Parts(out, estimator, bar, labels is not None)
        chunks_left = {i: sum(1 for (j, _), _ in tasks if j == i) for i in todo}
        gathered: dict[int, list[dict[str, Any]]] = {i: [] for i in todo}
        for (i, _), chunk in iter_prepared(tasks, prepare, labels, reader, workers):
            gathered[i].append(chunk)
            chunks_left[i] -= 1
            if chunks_left[i]:
                continue
            parts = gathered.pop(i)
            metas = [m for p in parts for m in p["meta"]]
            writer.submit(
                i,
                _rows_aligned([p["flux"] for p in parts]),
                _rows_aligned([p["weight"] for p in parts]),
                np.concatenate([p["labels"] for p in parts]),
                meta_columns(metas) if metas else {},
                [f for p in parts for f in p["failures"]],
            )
        writer.flush()
        bar.close()
        done_now = n_todo
    else:
        done_now = 0
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
    library = _open_library(library)
    _check_grid(store.wave, library, "store's")
    out = Path(out_dir)
    record = {
        "version": RUN_VERSION,
        "inputs": {
            "kind": "store",
            "n": len(store),
            "root": str(store.root.absolute()),
            "sha256": store.fingerprint,
        },
        "library": {"sha256": library_hash(library), "kind": library.meta.get("kind")},
        "infer": settings.record(),
    }
    estimator = Estimator(library, settings, mesh)
    if estimator.fit is not None:
        record["fit"] = estimator.fit.record()
    _check_run(out, record)
    n_parts = -(-len(store) // settings.chunk_size)
    with_ref = bool(np.isfinite(store.labels).any())
    failures = store.failures()
    if failures and jax.process_index() == 0 and not part_path(out, n_parts).exists():
        # The store's own skipped inputs, listed with the catalogue's failures.
        _write_part(out, n_parts, _empty_rows(with_ref, estimator.fit is not None), failures)
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

        multihost_utils.sync_global_devices("sost_jax.catalogue parts written")
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


def catalogue_table(columns: Mapping[str, np.ndarray]) -> Any:
    """Catalogue columns as an `astropy.table.Table` with their units (K, dex, km/s)."""
    import astropy.units as u
    from astropy.table import Table

    table = Table({k: np.asarray(v) for k, v in columns.items()})
    for name, unit in UNITS.items():
        if name in table.colnames:
            table[name].unit = u.dex if unit == "dex" else unit
    for flag in MatchFlag:
        if flag.value:
            table.meta[f"FLAG{flag.value}"] = flag.name
    return table


def write_catalogue(
    out: str | os.PathLike,
    columns: Mapping[str, np.ndarray],
    library: Library | None = None,
    record: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``catalogue.fits`` and ``catalogue.csv`` into ``out``, each atomically.

    Columns keep their order; units go into the FITS table, and the header describes the
    flag bits and names the library (LIBKIND, LIBHASH) and the run settings (SOSTRUN, JSON).
    Returns the two paths.
    """
    from astropy.io import fits

    out = Path(out)
    table = catalogue_table(columns)
    for name in table.colnames:  # dex goes in by hand below: FITS has no dex
        if UNITS.get(name) == "dex":
            table[name].unit = None
    if library is not None:
        table.meta["LIBKIND"] = str(library.meta.get("kind", ""))
        table.meta["LIBHASH"] = library_hash(library)
        table.meta["NTEMPL"] = len(library)
    if record is not None:
        table.meta["SOSTRUN"] = json.dumps(record, sort_keys=True, default=str)
    out.mkdir(parents=True, exist_ok=True)
    fits_path, csv_path = out / "catalogue.fits", out / "catalogue.csv"
    hdu = fits.table_to_hdu(table)
    for i, name in enumerate(table.colnames, start=1):
        if UNITS.get(name) == "dex":  # astropy refuses dex as a FITS unit; TOPCAT shows it
            hdu.header[f"TUNIT{i}"] = "dex"
    with replacing(fits_path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
    text = table.copy(copy_data=False)
    text.meta.clear()
    with replacing(csv_path) as tmp:
        text.write(tmp, format="ascii.csv", overwrite=True)
    return fits_path, csv_path


def read_catalogue(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A catalogue written by `write_catalogue` (FITS or CSV) as columns."""
    from astropy.table import Table

    path = Path(path)
    if path.suffix.lower() in (".fits", ".fit"):
        table = Table.read(path, format="fits", unit_parse_strict="silent")  # dex
    else:
        table = Table.read(path, format="ascii.csv")
    out = {}
    for name in table.colnames:
        column = np.asarray(table[name])
        out[name] = column.astype(str) if column.dtype.kind == "S" else column
    return out


def iter_parts(out_dir: str | os.PathLike) -> Iterator[dict[str, np.ndarray]]:
    """The catalogue columns of each finished part of a run, in order (also mid-run)."""
    for path in _all_parts(Path(out_dir)):
        yield _read_part(path)[0]
