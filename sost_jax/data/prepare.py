"""Spectra -> prepared rows: settings, medium, rest frame, common grid, resolution, normalisation.

The NumPy steps that bring raw spectra onto the output grid (air/vacuum, rest-frame shift,
resampling and degrading: `to_grid`), the checks of what they give (`check_coverage`,
`unphysical_flux`) and the batched, jit-compiled normalisation (`normalise_chunk`); and their
use on spectra in memory (a synthetic grid, the mock survey): `prepare_arrays` into a store,
`prepare_in_memory` as arrays. Files go through the same steps in reader processes
(`sost_jax.data.prepare_files`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sost_jax.data.preprocess import (
    NormaliseSettings,
    air_to_vac,
    degrade_to_fwhm,
    degrade_to_resolution,
    linear_grid,
    log_linear_grid,
    resample,
    to_rest_frame,
    vac_to_air,
)
from sost_jax.data.store import PreparedStore, StoreWriter
from sost_jax.errors import InputError
from sost_jax.settings import Settings

_MEDIA = ("vacuum", "air")


@dataclass(frozen=True)
class PrepareSettings(Settings):
    """Everything that turns a raw spectrum into a row of a prepared store.

    Attributes
    ----------
    grid_start, grid_stop, grid_step : float
        Output grid [Å]: pixel centres from start to stop (included) every step.
    grid_medium : str
        "vacuum" or "air": the medium of the output wavelengths.
    input_medium : str
        Medium of the input wavelengths when the reader cannot tell ("" = trust the reader,
        and assume ``grid_medium`` when it does not know either).
    rest_frame : bool
        Shift by the reader's redshift ``meta["z"]`` (LAMOST header Z) before resampling.
    degrade_fwhm, input_fwhm : float
        When degrade_fwhm > 0: convolve to this Gaussian FWHM [Å] from the input's FWHM [Å].
    degrade_r, input_r : float
        When degrade_r > 0: convolve to this resolving power from the input's (0 = infinite).
    min_coverage : float
        Skip spectra whose good pixels cover less than this fraction of the grid.
    normalise : NormaliseSettings
        The pseudo-continuum fit.
    """

    section = "preprocess"

    grid_start: float = 3900.0
    grid_stop: float = 8699.0
    grid_step: float = 1.0
    grid_medium: str = "vacuum"
    input_medium: str = ""
    rest_frame: bool = True
    degrade_fwhm: float = 0.0
    input_fwhm: float = 0.0
    degrade_r: float = 0.0
    input_r: float = 0.0
    min_coverage: float = 0.8
    normalise: NormaliseSettings = field(default_factory=NormaliseSettings)

    def __post_init__(self) -> None:
        linear_grid(self.grid_start, self.grid_stop, self.grid_step)  # validates
        if self.grid_medium not in _MEDIA:
            raise InputError(f"grid_medium must be 'vacuum' or 'air', got {self.grid_medium!r}")
        if self.input_medium not in ("", *_MEDIA):
            raise InputError(
                f"input_medium must be '', 'vacuum' or 'air', got {self.input_medium!r}"
            )
        if self.degrade_fwhm and self.degrade_r:
            raise InputError("set degrade_fwhm or degrade_r, not both")
        if self.degrade_fwhm < 0 or self.degrade_r < 0 or self.input_fwhm < 0 or self.input_r < 0:
            raise InputError("resolutions must be >= 0")
        if self.degrade_fwhm and self.input_fwhm > self.degrade_fwhm:
            raise InputError(
                f"input_fwhm {self.input_fwhm} Å is coarser than degrade_fwhm {self.degrade_fwhm} Å"
            )
        if self.degrade_r and self.input_r and self.input_r < self.degrade_r:
            raise InputError(f"input_r {self.input_r} is lower than degrade_r {self.degrade_r}")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise InputError(f"min_coverage must be in [0, 1], got {self.min_coverage}")

    @property
    def wave(self) -> np.ndarray:
        """float64 [P] output grid [Å]."""
        return linear_grid(self.grid_start, self.grid_stop, self.grid_step)


def _to_medium(wave: np.ndarray, medium: str | None, settings: PrepareSettings) -> np.ndarray:
    medium = settings.input_medium or medium or settings.grid_medium
    if medium == settings.grid_medium:
        return wave
    return air_to_vac(wave) if settings.grid_medium == "vacuum" else vac_to_air(wave)


def _degrade(
    wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, settings: PrepareSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convolve on an intermediate uniform grid (linear for FWHM, log for R) at native sampling.

    ``wave`` is [N, P_in]; returns the intermediate grid [P_mid] and flux, ivar [N, P_mid].
    """
    lo = max(float(wave[:, 0].min()), settings.grid_start - 10 * settings.grid_step)
    hi = min(float(wave[:, -1].max()), settings.grid_stop + 10 * settings.grid_step)
    if settings.degrade_fwhm:
        step = min(float(np.median(np.diff(wave[0]))), settings.grid_step)
        mid = linear_grid(lo, hi, step)
        flux, ivar = resample(wave, flux, ivar, mid)
        flux, ivar = degrade_to_fwhm(mid, flux, settings.degrade_fwhm, settings.input_fwhm, ivar)
    else:
        dlog = float(np.median(np.diff(np.log10(wave[0]))))
        mid = log_linear_grid(lo, int(np.log10(hi / lo) / dlog) + 1, dlog)
        flux, ivar = resample(wave, flux, ivar, mid)
        r_in = settings.input_r or np.inf
        flux, ivar = degrade_to_resolution(mid, flux, settings.degrade_r, r_in, ivar)
    return mid, flux, ivar


def to_grid(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    settings: PrepareSettings,
    z: np.ndarray | None = None,
    medium: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bring spectra onto the output grid: medium, rest frame, resolution, resampling.

    Parameters
    ----------
    wave : [P_in] or [N, P_in]
        Input wavelengths [Å].
    flux, ivar : [N, P_in]
        Flux and inverse variance (0 = bad pixel).
    settings : PrepareSettings
        Grid and resolution.
    z : [N], optional
        Redshifts to remove (only used when ``settings.rest_frame``).
    medium : str, optional
        Medium of ``wave`` as the reader knows it.

    Returns
    -------
    flux, ivar : float32 [N, P] on ``settings.wave``; ivar = 0 where there is no data.
    """
    flux, ivar = np.atleast_2d(flux), np.atleast_2d(ivar)
    wave = np.asarray(wave, np.float64)
    if wave.ndim == 2 and (wave == wave[:1]).all():
        wave = wave[0]  # one grid for all (a survey's files): one interpolation for all
    wave = _to_medium(wave, medium, settings)
    shift = settings.rest_frame and z is not None
    z = np.nan_to_num(np.asarray(z, np.float64)) if shift else None
    if settings.degrade_fwhm or settings.degrade_r:
        wave = np.broadcast_to(wave, flux.shape)
        if shift:
            wave = to_rest_frame(wave, z)
        wave, flux, ivar = _degrade(np.asarray(wave), flux, ivar, settings)
        return resample(wave, flux, ivar, settings.wave)
    if not shift:
        return resample(wave, flux, ivar, settings.wave)
    if wave.ndim == 1:  # the grid's pixels in each spectrum's observed frame
        return resample(wave, flux, ivar, settings.wave[None, :] * (1.0 + z[:, None]))
    return resample(to_rest_frame(wave, z), flux, ivar, settings.wave)


def check_coverage(ivar: np.ndarray, settings: PrepareSettings) -> list[str | None]:
    """Reason to skip each spectrum, or None to keep it.

    Parameters
    ----------
    ivar : [N, P]
        Inverse variance on ``settings.wave`` (0 = no data).
    settings : PrepareSettings
        ``min_coverage``: the fraction of the grid the good pixels must cover.
    """
    coverage = (ivar > 0).mean(axis=1)
    return [
        None
        if c >= settings.min_coverage and c > 0
        else (
            f"good pixels cover {100 * c:.0f}% of the grid "
            f"{settings.grid_start:g}-{settings.grid_stop:g} Å "
            f"(minimum {100 * settings.min_coverage:.0f}%)"
        )
        for c in coverage
    ]


UNPHYSICAL_KEY = "unphysical_flux"
"""Meta key (1) of spectra `unphysical_flux` finds; the catalogue flags their rows."""


def unphysical_flux(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """[N] bool: spectra with data whose flux is zero or negative at every such pixel.

    Parameters
    ----------
    flux, ivar : [N, P]
        On the grid; ``ivar > 0`` marks the pixels with data.
    """
    good = ivar > 0
    return good.any(axis=1) & ~((flux > 0) & good).any(axis=1)


def normalise_chunk(result: Mapping[str, Any], settings: PrepareSettings) -> dict[str, Any]:
    """Normalise one chunk on the grid; flag the spectra without physical flux.

    Parameters
    ----------
    result : dict
        ``flux``, ``ivar`` [n, P] on ``settings.wave``, ``meta`` (n dicts) and ``failures``,
        as `sost_jax.data.prepare_files.read_to_grid` returns them.
    settings : PrepareSettings
        The grid and the pseudo-continuum fit.

    Returns
    -------
    dict
        ``flux``, ``weight`` [n, P] float32 (normalised), ``meta`` (``UNPHYSICAL_KEY`` set
        where `unphysical_flux`, whose ivar is zeroed before the fit) and ``failures`` as
        given.
    """
    from sost_jax.data.preprocess.continuum import normalise  # imports JAX on first use

    metas, ivar = result["meta"], result["ivar"]
    bad = unphysical_flux(result["flux"], ivar)
    if bad.any():  # rows flagged UNPHYSICAL_FLUX by the catalogue, without data to match
        ivar = np.where(bad[:, None], 0.0, ivar).astype(ivar.dtype)
        metas = [{**m, UNPHYSICAL_KEY: 1} if b else m for m, b in zip(metas, bad, strict=True)]
    if metas:
        flux, weight, _ = normalise(settings.wave, result["flux"], ivar, settings.normalise)
    else:
        flux = weight = result["flux"]
    return {"flux": flux, "weight": weight, "meta": metas, "failures": result["failures"]}


def meta_columns(metas: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Turn per-spectrum meta dicts into columns: numbers as float64, the rest as str."""
    keys = sorted(set().union(*[m.keys() for m in metas])) if metas else ["id"]
    cols = {}
    for k in keys:
        vals = [m.get(k) for m in metas]
        numeric = all(
            v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
            for v in vals
        )
        if numeric:
            cols[k] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        else:
            cols[k] = np.array(["" if v is None else str(v) for v in vals])
    return cols


def _write_shard(writer: StoreWriter, shard: int, parts: Sequence[Mapping[str, Any]]) -> None:
    metas = [m for p in parts for m in p["meta"]]
    writer.write_shard(
        shard,
        np.concatenate([p["flux"] for p in parts]),
        np.concatenate([p["weight"] for p in parts]),
        np.concatenate([p["labels"] for p in parts]),
        meta_columns(metas),
        [f for p in parts for f in p["failures"]],
    )


def prepare_arrays(
    out_dir: str | os.PathLike,
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    settings: PrepareSettings,
    labels: np.ndarray | None = None,
    meta: Mapping[str, np.ndarray] | None = None,
    z: np.ndarray | None = None,
    info: Mapping[str, Any] | None = None,
    shard_size: int = 4096,
    chunk_size: int = 256,
) -> PreparedStore:
    """Prepare in-memory spectra (a synthetic grid, the mock survey) into a store.

    Parameters
    ----------
    wave : [P_in] or [N, P_in]
        Input wavelengths [Å], in ``settings.input_medium`` (or the grid's medium).
    flux, ivar : [N, P_in]
        Spectra; pass ivar = 1 for noiseless models.
    labels : [N, 3], optional
        Teff [K], log g [dex], [Fe/H] [dex].
    meta : dict of [N] columns, optional
        Must hold ``id`` if given; default ids are "0", "1", ...
    z : [N], optional
        Redshifts, removed when ``settings.rest_frame``.
    info : dict, optional
        Extra provenance for the manifest.
    """
    n = np.shape(flux)[0]
    labels = np.full((n, 3), np.nan, np.float32) if labels is None else np.asarray(labels)
    meta = {"id": np.arange(n).astype(str)} if meta is None else dict(meta)
    full_info = {
        "source": "arrays",
        "n_inputs": int(n),
        "preprocess": settings.to_dict(),
        **(info or {}),
    }
    writer = StoreWriter(out_dir, settings.wave, full_info, n_shards=-(-n // shard_size))
    done = writer.done_shards()
    wave = np.asarray(wave, np.float64)
    for s, lo in enumerate(range(0, n, shard_size)):
        if s in done:
            continue
        parts = []
        for clo in range(lo, min(lo + shard_size, n), chunk_size):
            sl = slice(clo, min(clo + chunk_size, n, lo + shard_size))
            w = wave[sl] if wave.ndim == 2 else wave
            rows = {k: np.asarray(v)[sl] for k, v in meta.items()}
            parts.append(
                _prepared_rows(
                    w, flux[sl], ivar[sl], settings, rows, labels[sl], None if z is None else z[sl]
                )
            )
        _write_shard(writer, s, parts)
    return PreparedStore(out_dir)


def _prepared_rows(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    settings: PrepareSettings,
    meta: Mapping[str, np.ndarray],
    labels: np.ndarray,
    z: np.ndarray | None,
) -> dict[str, Any]:
    """Grid, check and normalise rows of arrays: ``flux``, ``weight``, ``labels``, ``meta``
    (dicts) of the usable rows and ``failures`` (id, reason) of the others."""
    f, iv = to_grid(wave, flux, ivar, settings, z)
    reasons = check_coverage(iv, settings)
    keep = np.array([r is None for r in reasons], bool)
    ids = np.asarray(meta["id"])
    rows = [{k: v[i] for k, v in meta.items()} for i in range(len(ids))]
    part = normalise_chunk(
        {
            "flux": f[keep],
            "ivar": iv[keep],
            "meta": [r for r, k in zip(rows, keep, strict=True) if k],
            "failures": [(str(i), r) for i, r in zip(ids, reasons, strict=True) if r],
        },
        settings,
    )
    part["labels"] = np.asarray(labels, np.float32)[keep]
    return part


def prepare_in_memory(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    settings: PrepareSettings,
    meta: Mapping[str, np.ndarray] | None = None,
    z: np.ndarray | None = None,
) -> dict[str, Any]:
    """`prepare_arrays` without a store: the prepared spectra as arrays.

    Parameters are those of `prepare_arrays` (wave [P_in] or [N, P_in] Å; flux, ivar
    [N, P_in]; meta columns [N] with ``id``; redshifts z [N]).

    Returns
    -------
    dict
        ``flux``, ``weight`` float32 [M, P] on ``settings.wave`` (normalised) and ``meta``
        (columns [M]) of the M usable spectra; ``failures``: (id, reason) of the others.
    """
    n = np.shape(flux)[0]
    meta = {"id": np.arange(n).astype(str)} if meta is None else dict(meta)
    wave = np.asarray(wave, np.float64)
    part = _prepared_rows(wave, flux, ivar, settings, meta, np.full((n, 3), np.nan), z)
    return {
        "flux": part["flux"],
        "weight": part["weight"],
        "meta": meta_columns(part["meta"]) if part["meta"] else {"id": np.zeros(0, str)},
        "failures": part["failures"],
    }
