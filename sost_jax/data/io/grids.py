"""Synthetic spectral grids -> `Grid`: Castelli-Kurucz 2004 tables, ASCII files, arrays.

Every reader returns models on one shared wavelength axis; grids whose files disagree on
the axis are refused (resample them first) rather than silently interpolated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from sost_jax.data.io import fitsfast
from sost_jax.data.io.fitsfast import Backend, FitsFormatError, FitsUnsupported
from sost_jax.data.io.references import read_reference_catalog
from sost_jax.data.spectra import Grid, ReadError
from sost_jax.errors import InputError

Range = tuple[float, float] | None

# Medium of the ck04 grid. The CDBS AA_README is silent on air vs vacuum. ATLAS9 computes
# its fluxes on a frequency grid and reports wavelength = c / frequency, i.e. vacuum
# wavelengths, so we label the grid "vacuum". The difference (about 1.4 Å at 5000 Å) is in
# any case far below the grid's 20 Å sampling in the optical.
CK04_MEDIUM = "vacuum"

_CK04_DIR_RE = re.compile(r"^ck([mp])(\d\d)$")
_CK04_FILE_RE = re.compile(r"^ck([mp])(\d\d)_(\d+)\.fits$")
_CK04_COLUMN_RE = re.compile(r"^g(\d\d)$")
_NPZ = (".npz",)
_HDF5 = (".h5", ".hdf5")


def _in_range(value: float, bounds: Range) -> bool:
    return bounds is None or bounds[0] <= value <= bounds[1]


def _signed(sign: str, digits: str) -> float:
    """[M/H] from a ck04 name part: ("m", "25") -> -2.5."""
    return (-1.0 if sign == "m" else 1.0) * int(digits) / 10.0


def _native(array: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(array, dtype=dtype)


def _check_axis(wave: np.ndarray, ref: np.ndarray | None, path: Any, ref_path: Any) -> None:
    if ref is not None and (wave.shape != ref.shape or not np.array_equal(wave, ref)):
        raise ReadError(
            f"{path}: wavelength axis differs from that of {ref_path}; "
            "resample the models onto one axis first"
        )


def read_ck04(
    root: str | PathLike[str],
    teff_range: Range = None,
    logg_range: Range = None,
    feh_range: Range = None,
    wave_range: Range = None,
    backend: Backend = "auto",
) -> Grid:
    """Read the Castelli & Kurucz (2004) ATLAS9 grid in its STScI synphot layout.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``ckm25/`` ... ``ckp05/``, each with ``ckXXX_TEFF.fits`` tables
        (column WAVELENGTH [Å] and g00 ... g50 = F_lambda for log g = column number / 10).
    teff_range, logg_range, feh_range : (float, float), optional
        Inclusive bounds [K], [dex], [dex]; None keeps all.
    wave_range : (float, float), optional
        Inclusive wavelength bounds [Å]; None keeps the full 90 Å - 160 µm axis.
    backend : {"auto", "fast", "astropy"}
        FITS decoding, as in `sost_jax.data.io.fitsfast.read_hdus`.

    Returns
    -------
    Grid
        params float64 [N, 3] (Teff [K], log g [dex], [M/H] [dex]) sorted by [M/H], Teff,
        log g; wave float64 [P] [Å]; flux float32 [N, P] surface F_lambda
        [erg s^-1 cm^-2 Å^-1]. All-zero columns (models not computed) are skipped.
        ``meta["medium"]`` is "vacuum" (see `CK04_MEDIUM`).

    Raises
    ------
    ReadError
        No ck04 file under ``root``, an unreadable table, differing wavelength axes, or
        no model within the ranges.
    """
    root = Path(root)
    files = _ck04_files(root, teff_range, feh_range)
    if not files:
        raise ReadError(f"{root}: no ck04 table (ckXXX/ckXXX_TEFF.fits) within the ranges")
    params: list[tuple[float, float, float]] = []
    fluxes: list[np.ndarray] = []
    wave: np.ndarray | None = None
    wave_path: Path | None = None
    for path, name_teff, name_feh in files:
        teff, feh, table = _read_ck04_table(path, name_teff, name_feh, backend)
        this_wave = _native(table["WAVELENGTH"], np.float64)
        _check_axis(this_wave, wave, path, wave_path)
        wave, wave_path = this_wave, path
        for logg, column in _ck04_models(table, logg_range):
            params.append((teff, logg, feh))
            fluxes.append(_native(column, np.float32))
    if not params or wave is None:
        raise ReadError(f"{root}: no computed ck04 model within the ranges")
    return _ck04_grid(
        root, np.array(params, dtype=np.float64), wave, fluxes, wave_range, len(files)
    )


def _ck04_files(root: Path, teff_range: Range, feh_range: Range) -> list[tuple[Path, float, float]]:
    """The ck04 tables under ``root`` within the ranges, in name order.

    Returns
    -------
    list of (path, Teff [K], [M/H] [dex])
        Teff and [M/H] as the folder and file names give them (``ckm25/ckm25_3500.fits``).
    """
    files: list[tuple[Path, float, float]] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        dir_match = _CK04_DIR_RE.match(folder.name)
        if dir_match is None or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            file_match = _CK04_FILE_RE.match(path.name)
            if file_match is None:
                continue
            teff = float(file_match.group(3))
            feh = _signed(file_match.group(1), file_match.group(2))
            if _in_range(teff, teff_range) and _in_range(feh, feh_range):
                files.append((path, teff, feh))
    return files


def _read_ck04_table(
    path: Path, name_teff: float, name_feh: float, backend: Backend
) -> tuple[float, float, dict[str, np.ndarray]]:
    """Teff [K], [M/H] [dex] and the binary table of one ck04 file.

    Teff and [M/H] are the primary header's TEFF and LOG_Z, or the name's where the header
    lacks them or holds no number. The table has a WAVELENGTH column [Å] (checked) and the
    g00 ... g50 flux columns.
    """
    try:
        raw = fitsfast.load_bytes(path)
        hdus = fitsfast.read_hdus(raw, 2, backend)
    except (OSError, FitsFormatError, FitsUnsupported) as err:
        raise ReadError(f"{path}: {err}") from err
    if len(hdus) < 2 or not isinstance(hdus[1].data, dict):
        raise ReadError(f"{path}: no binary table in HDU 1")
    header, table = hdus[0].header, hdus[1].data
    teff = header.get("TEFF", name_teff)
    feh = header.get("LOG_Z", name_feh)
    if isinstance(teff, bool) or not isinstance(teff, int | float):
        teff = name_teff
    if isinstance(feh, bool) or not isinstance(feh, int | float):
        feh = name_feh
    if "WAVELENGTH" not in table:
        raise ReadError(f"{path}: no WAVELENGTH column")
    return float(teff), float(feh), table


def _ck04_models(table: dict[str, np.ndarray], logg_range: Range) -> list[tuple[float, np.ndarray]]:
    """(log g [dex], flux column [P]) of a ck04 table's computed models within ``logg_range``,
    in column order; all-zero columns (models not computed) are left out."""
    models = []
    for name, column in table.items():
        col_match = _CK04_COLUMN_RE.match(name)
        if col_match is None:
            continue
        logg = int(col_match.group(1)) / 10.0
        if not _in_range(logg, logg_range) or not np.any(column):
            continue
        models.append((logg, column))
    return models


def _ck04_grid(
    root: Path,
    params: np.ndarray,
    wave: np.ndarray,
    fluxes: list[np.ndarray],
    wave_range: Range,
    n_files: int,
) -> Grid:
    """The `Grid` of the ck04 models read: sorted by [M/H], Teff, log g, cut to ``wave_range``.

    Parameters
    ----------
    params : float64 [N, 3]
        Teff [K], log g [dex], [M/H] [dex] of each model, in reading order.
    wave : float64 [P]
        The shared wavelength axis [Å].
    fluxes : N arrays float32 [P]
        The models' F_lambda.
    """
    keep = np.ones(len(wave), dtype=bool)
    if wave_range is not None:
        keep = (wave >= wave_range[0]) & (wave <= wave_range[1])
    order = np.lexsort((params[:, 1], params[:, 0], params[:, 2]))
    flux = np.stack(fluxes)[order][:, keep]
    meta = {
        "source": "ck04",
        "root": str(root),
        "medium": CK04_MEDIUM,
        "flux_unit": "erg s^-1 cm^-2 Å^-1 (surface flux)",
        "n_files": n_files,
    }
    return Grid(params[order], wave[keep], flux, meta)


def _read_two_columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        table = np.loadtxt(path, comments="#", usecols=(0, 1), ndmin=2, dtype=np.float64)
    except (OSError, ValueError, IndexError) as err:
        raise ReadError(f"{path}: {err}") from err
    if table.shape[0] < 2:
        raise ReadError(f"{path}: fewer than 2 rows")
    wave, flux = table[:, 0], table[:, 1]
    if np.all(np.diff(wave) < 0):
        wave, flux = wave[::-1], flux[::-1]
    if not np.all(np.isfinite(wave)) or not np.all(np.diff(wave) > 0):
        raise ReadError(f"{path}: wavelengths are not finite and strictly monotonic")
    return wave, flux


def read_ascii_grid(
    paths: Sequence[str | PathLike[str]],
    params: np.ndarray,
    medium: str | None = None,
) -> Grid:
    """Read a grid from two-column ASCII files (wavelength [Å], flux; ``#`` comments).

    Parameters
    ----------
    paths : sequence of str or path-like, length N
        One model per file; extra columns after the second are ignored.
    params : array [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of each file.
    medium : {"air", "vacuum", None}
        Stored in ``meta["medium"]``.

    Returns
    -------
    Grid
        params float64 [N, 3], wave float64 [P] increasing, flux float32 [N, P], in the
        order given.

    Raises
    ------
    ReadError
        An unreadable file, or files whose wavelength columns are not identical (the
        message names both; resample them onto one axis first).
    """
    paths = [Path(p) for p in paths]
    params = np.asarray(params, dtype=np.float64)
    if params.shape != (len(paths), 3):
        raise InputError(f"params must have shape ({len(paths)}, 3), got {params.shape}")
    if not paths:
        raise InputError("no file given")
    wave: np.ndarray | None = None
    fluxes = []
    for path in paths:
        this_wave, flux = _read_two_columns(path)
        _check_axis(this_wave, wave, path, paths[0])
        wave = this_wave
        fluxes.append(flux)
    assert wave is not None
    meta = {"source": "ascii", "paths": [str(p) for p in paths], "medium": medium}
    return Grid(params, wave, np.stack(fluxes).astype(np.float32), meta)


def read_ascii_grid_index(index_csv: str | PathLike[str], medium: str | None = None) -> Grid:
    """Read an ASCII grid listed in a CSV index with columns path, teff, logg, feh.

    Parameters
    ----------
    index_csv : str or path-like
        CSV file; relative paths are taken relative to its folder.
    medium : {"air", "vacuum", None}
        Stored in ``meta["medium"]``.

    Returns
    -------
    Grid
        As for `read_ascii_grid`, in the index's row order.

    Raises
    ------
    ReadError
        Missing columns or any failure of `read_ascii_grid`.
    """
    index_csv = Path(index_csv)
    table = read_reference_catalog(index_csv, columns=["path", "teff", "logg", "feh"])
    paths = [p if p.is_absolute() else index_csv.parent / p for p in map(Path, table["path"])]
    try:
        params = np.stack([table["teff"], table["logg"], table["feh"]], axis=1).astype(np.float64)
    except ValueError as err:
        raise ReadError(f"{index_csv}: teff/logg/feh must be numbers ({err})") from err
    return read_ascii_grid(paths, params, medium)


def _validated(path: Path, params: Any, wave: Any, flux: Any, meta: dict[str, Any]) -> Grid:
    params = np.asarray(params, dtype=np.float64)
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float32)
    if params.ndim != 2 or params.shape[1] != 3:
        raise ReadError(f"{path}: params must be [N, 3], got {params.shape}")
    if wave.ndim != 1 or flux.shape != (params.shape[0], wave.shape[0]):
        raise ReadError(
            f"{path}: shapes params {params.shape}, wavelength {wave.shape}, flux "
            f"{flux.shape} do not fit [N, 3], [P], [N, P]"
        )
    return Grid(params, wave, flux, meta)


def _meta_from_json(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode()
    try:
        meta = json.loads(str(text)) if text else {}
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def read_array_grid(path: str | PathLike[str]) -> Grid:
    """Read a grid stored as arrays in ``.npz`` or HDF5 (``.h5``/``.hdf5``).

    Parameters
    ----------
    path : str or path-like
        Holds ``params`` [N, 3] (Teff [K], log g [dex], [Fe/H] [dex]), ``wavelength`` [P]
        [Å] and ``flux`` [N, P]; optionally ``medium`` ("air"/"vacuum"; an attribute in
        HDF5) and ``meta_json`` (written by `write_array_grid`).

    Returns
    -------
    Grid
        params float64, wave float64, flux float32; meta with ``path`` and ``medium``.

    Raises
    ------
    ReadError
        Unreadable file, unknown suffix, missing datasets or inconsistent shapes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _NPZ:
            with np.load(path, allow_pickle=False) as data:  # only what a Grid holds
                wanted = ("params", "wavelength", "flux", "medium", "meta_json")
                arrays = {k: data[k] for k in wanted if k in data.files}
            meta = _meta_from_json(arrays.get("meta_json", np.array("")).item())
            medium = str(arrays["medium"].item()) if "medium" in arrays else None
        elif suffix in _HDF5:
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: f[k][()] for k in ("params", "wavelength", "flux") if k in f}
                meta = _meta_from_json(f.attrs.get("meta_json", ""))
                medium = f.attrs.get("medium")
                medium = medium.decode() if isinstance(medium, bytes) else medium
        else:
            raise InputError("unknown grid format (expected .npz, .h5 or .hdf5)")
        missing = [k for k in ("params", "wavelength", "flux") if k not in arrays]
        if missing:
            raise InputError(f"missing dataset(s) {', '.join(missing)}")
    except (OSError, ValueError, KeyError) as err:
        raise ReadError(f"{path}: {err}") from err
    meta.update(path=str(path), medium=medium or None)
    return _validated(path, arrays["params"], arrays["wavelength"], arrays["flux"], meta)


def write_array_grid(path: str | PathLike[str], grid: Grid) -> None:
    """Write a grid to ``.npz`` or HDF5 (``.h5``/``.hdf5``) for `read_array_grid`.

    Parameters
    ----------
    path : str or path-like
        Output file; its suffix picks the format.
    grid : Grid
        Stored as ``params``, ``wavelength``, ``flux``, ``medium`` and ``meta_json`` (the
        meta dict as JSON; values JSON cannot hold are written as strings).

    Raises
    ------
    ValueError
        Unknown suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    medium = grid.meta.get("medium") or ""
    meta_json = json.dumps(grid.meta, default=str)
    params = np.asarray(grid.params, dtype=np.float64)
    wave = np.asarray(grid.wave, dtype=np.float64)
    flux = np.asarray(grid.flux, dtype=np.float32)
    if suffix in _NPZ:
        np.savez(
            path,
            params=params,
            wavelength=wave,
            flux=flux,
            medium=np.array(medium),
            meta_json=np.array(meta_json),
        )
    elif suffix in _HDF5:
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("params", data=params)
            f.create_dataset("wavelength", data=wave)
            f.create_dataset("flux", data=flux)
            f.attrs["medium"] = medium
            f.attrs["meta_json"] = meta_json
    else:
        raise InputError(f"{path}: unknown grid format (expected .npz, .h5 or .hdf5)")
