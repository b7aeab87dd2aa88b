"""Template libraries: grid cells from a reference catalogue -> emulator -> translation -> FITS.

The paper's library is built in five steps, one function each:

1. `sost_jax.library.cells.select_cells`: the reference catalogue's stars (observed labels) are
   binned in cells of 150 K x 0.25 dex x 0.15 dex over 3500-8000 K, log g 0-5, [Fe/H]
   -2.0..+0.5 (all `LibraryGrid` settings); cells with fewer than 5 stars are dropped; one
   random (seeded) parameter triple is drawn uniformly inside each kept cell.
2. `build_library` with no translator: the emulator makes a synthetic spectrum of every
   triple (the "raw synthetic" library, kept for comparison).
3. `translate_library`: a style source (`sost_jax.library.styles`; the paper's is the style of the
   chi2-matched observed partner) gives each synthetic spectrum a style code, and the trained
   generator translates it into the observed domain. Labels are inherited from the
   synthetic side.
4. `write_library`: one FITS file, a flux image [T, P] with the provenance in its header,
   the wavelength grid (extension WAVE) and the labels (binary table LABELS).
5. `read_library`: back to arrays (any FITS reader can open the file too).

`sost_jax.library.recipe.make_libraries` runs them all from a config (and trains the
emulators they need).

The translation itself (`sost_jax.sost.translation.Translator`) is a trained run's generator.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.constants import LABEL_NAMES
from sost_jax.errors import InputError
from sost_jax.library.cells import check_labels
from sost_jax.library.styles import StyleContext, StyleSource, describe, draw
from sost_jax.sost.translation import batched

Array = jax.Array

LABEL_UNITS = {"teff": "K", "logg": "dex", "feh": "dex"}

# Provenance: meta key -> (FITS keyword, comment).
HEADER_KEYS = {
    "kind": ("LIBKIND", "raw synthetic or translated"),
    "n_templates": ("NTEMPL", "number of templates"),
    "checkpoint": ("CHECKPT", "model checkpoint"),
    "step": ("CKPTSTEP", "training step of the checkpoint"),
    "config_hash": ("CFGHASH", "sha256 of the run config (first 16 hex)"),
    "style_source": ("STYLESRC", "style source (sost_jax.library.styles)"),
    "created": ("DATE", "UTC creation time"),
}
META_KEY = "SOSTMETA"


@dataclass
class Library:
    """A template library.

    Attributes
    ----------
    wave : float64 [P]
        Wavelength [Å].
    flux : float32 [T, P]
        Normalised template flux.
    labels : float64 [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    meta : dict
        Provenance (JSON-serialisable values): ``kind`` ("raw" or "translated"),
        ``n_templates``, ``style_source``, ``checkpoint``, ``step``, ``config_hash``, ...
    columns : dict of [T] arrays
        Extra per-template columns, e.g. ``partner`` (row of the matched observed spectrum).
    """

    wave: np.ndarray
    flux: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.wave = np.asarray(self.wave, np.float64)
        self.flux = np.asarray(self.flux, np.float32)
        self.labels = check_labels(self.labels)
        if self.wave.ndim != 1 or self.flux.shape != (self.labels.shape[0], self.wave.size):
            raise InputError(
                f"wave {self.wave.shape}, flux {self.flux.shape} and labels "
                f"{self.labels.shape} must be [P], [T, P] and [T, 3]"
            )
        self.columns = {k: np.asarray(v) for k, v in self.columns.items()}
        for k, v in self.columns.items():
            if v.shape != (len(self),):
                raise InputError(f"column {k!r} has shape {v.shape}, expected ({len(self)},)")
            if k in LABEL_NAMES:
                raise InputError(f"column name {k!r} is taken by the labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_pixels(self) -> int:
        return int(self.wave.size)


def build_library(
    params: Any,
    generate_fn: Callable[[Any], Any],
    translate_fn: Callable[[Any, Any], Any] | None = None,
    style_source: StyleSource | None = None,
    key: Array | None = None,
    *,
    wave: Any = None,
    batch: int = 256,
    meta: Mapping[str, Any] | None = None,
) -> Library:
    """Synthetic spectra at ``params``, translated when a translator is given.

    Parameters
    ----------
    params : [T, 3]
        Teff [K], log g [dex], [Fe/H] [dex] (e.g. from `select_cells`).
    generate_fn : callable
        ``labels [B, 3] float32 -> flux [B, P]``, e.g.
        `sost_jax.library.emulator.Emulator.generate`.
    translate_fn : callable, optional
        ``(flux [B, P], styles [B, d]) -> flux [B, P]`` (e.g. `translator_from_run`); None
        gives the raw synthetic library.
    style_source : StyleSource
        Needed with ``translate_fn`` (see `translate_library`).
    key : PRNG key
        For the style source; default ``PRNGKey(0)``.
    wave : [P], optional
        Wavelength [Å]; default ``generate_fn.__self__.wave`` when it is an emulator's method.
    batch : int
        Spectra per call of ``generate_fn`` and ``translate_fn``.
    meta : mapping, optional
        Provenance added to the library's (checkpoint, config hash, ...).

    Returns
    -------
    Library
        ``kind`` "raw" or "translated"; labels are ``params`` in both.
    """
    labels = check_labels(params, "params")
    if wave is None:
        wave = getattr(getattr(generate_fn, "__self__", None), "wave", None)
    if wave is None:
        raise InputError("give the wavelength grid (wave=): generate_fn does not carry one")
    if len(labels):
        flux = batched(lambda x: generate_fn(jnp.asarray(x, jnp.float32)), (labels,), batch)
    else:
        flux = np.zeros((0, np.size(wave)), np.float32)
    info = {"kind": "raw", "n_templates": int(labels.shape[0]), "style_source": "none"}
    raw = Library(wave, flux, labels, {**info, **dict(meta or {})})
    if translate_fn is None:
        return raw
    return translate_library(raw, translate_fn, style_source, key, batch=batch)


def translate_library(
    raw: Library,
    translate_fn: Callable[[Any, Any], Any],
    style_source: StyleSource | None,
    key: Array | None = None,
    *,
    batch: int = 256,
    meta: Mapping[str, Any] | None = None,
) -> Library:
    """Translate a raw synthetic library into the observed domain.

    The style source is called once for all T templates, with the synthetic flux and labels
    as context, so the styles do not depend on ``batch``. Columns the source records
    (`sost_jax.library.styles.draw`: the matched source's observed partner of each template, its row
    ``partner`` and its id ``partner_id``) join the library's.

    Parameters
    ----------
    raw : Library
        Synthetic spectra and their labels.
    translate_fn : callable
        ``(flux [B, P], styles [B, d]) -> translated flux [B, P]``.
    style_source : StyleSource
    key : PRNG key, optional
        Default ``PRNGKey(0)``.
    batch : int
        Spectra per call of ``translate_fn``.
    meta : mapping, optional
        Provenance added to (and overriding) the raw library's.

    Returns
    -------
    Library
        ``kind`` "translated"; labels and wavelength are the raw library's.
    """
    if style_source is None:
        raise InputError("translating needs a style source (sost_jax.library.styles)")
    key = jax.random.PRNGKey(0) if key is None else key
    n = len(raw)
    columns = dict(raw.columns)
    styles, recorded = draw(style_source, key, n, StyleContext(flux=raw.flux, labels=raw.labels))
    columns.update(recorded)
    styles = np.asarray(styles, np.float32)
    if styles.shape[0] != n or styles.ndim != 2:
        raise InputError(f"the style source gave shape {styles.shape}, expected ({n}, d)")
    if n:
        flux = batched(
            lambda x, s: translate_fn(jnp.asarray(x), jnp.asarray(s)), (raw.flux, styles), batch
        )
    else:
        flux = np.zeros((0, raw.n_pixels), np.float32)
    info = {"kind": "translated", "style_source": describe(style_source)}
    return Library(raw.wave, flux, raw.labels, {**raw.meta, **info, **dict(meta or {})}, columns)


def _json_default(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists; anything else as text."""
    return value.tolist() if isinstance(value, (np.generic, np.ndarray)) else str(value)


def _header_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return "" if value is None else json.dumps(value, default=_json_default)


def write_library(path: str | os.PathLike, library: Library, overwrite: bool = False) -> Path:
    """Write a library as one FITS file.

    Layout
    ------
    Primary HDU
        float32 image [T, P] (NAXIS1 = P pixels, NAXIS2 = T templates). Header: LIBKIND,
        NTEMPL, CHECKPT, CKPTSTEP, CFGHASH, STYLESRC, DATE (long values use the FITS CONTINUE
        convention), the whole ``meta`` as JSON in SOSTMETA, and a linear wavelength WCS
        (CRVAL1, CDELT1 [Å]) when the grid is linear.
    WAVE
        float64 [P] wavelength [Å].
    LABELS
        Binary table: ``teff`` [K], ``logg`` [dex], ``feh`` [dex] and the extra columns.

    Returns the path. An existing file is refused unless ``overwrite``.
    """
    from astropy.io import fits

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    meta = dict(library.meta)
    meta.setdefault("n_templates", len(library))
    meta.setdefault("created", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    primary = fits.PrimaryHDU(np.ascontiguousarray(library.flux, np.float32))
    header = primary.header
    for name, (keyword, comment) in HEADER_KEYS.items():
        if name in meta:
            header[keyword] = (_header_value(meta[name]), comment)
    header[META_KEY] = (json.dumps(meta, sort_keys=True, default=_json_default), "provenance")
    wave = library.wave
    if wave.size > 1:
        step = np.diff(wave)
        if np.allclose(step, step[0], rtol=1e-9, atol=0.0):
            header["CTYPE1"] = ("WAVE", "wavelength, as the input grid")
            header["CUNIT1"] = "Angstrom"
            header["CRPIX1"] = 1.0
            header["CRVAL1"] = (float(wave[0]), "wavelength of the first pixel [Angstrom]")
            header["CDELT1"] = (float(step[0]), "pixel step [Angstrom]")
    wave_hdu = fits.ImageHDU(wave, name="WAVE")
    wave_hdu.header["BUNIT"] = "Angstrom"
    cols = [
        fits.Column(name=n, format="D", unit=LABEL_UNITS[n], array=library.labels[:, i])
        for i, n in enumerate(LABEL_NAMES)
    ]
    for name, values in library.columns.items():
        v = np.asarray(values)
        if v.dtype.kind in "US":
            width = max(1, max((len(s) for s in v.astype(str)), default=1))
            cols.append(fits.Column(name=name, format=f"{width}A", array=v.astype(str)))
        elif v.dtype.kind in "iub":
            cols.append(fits.Column(name=name, format="K", array=v.astype(np.int64)))
        else:
            cols.append(fits.Column(name=name, format="D", array=v.astype(np.float64)))
    table = fits.BinTableHDU.from_columns(cols, name="LABELS")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, wave_hdu, table]).writeto(path, overwrite=overwrite)
    return path


def read_library(path: str | os.PathLike) -> Library:
    """Read a library written by `write_library`.

    Returns
    -------
    Library
        flux float32 [T, P], wave float64 [P] [Å], labels float64 [T, 3], the provenance
        in ``meta`` and the extra table columns in ``columns``.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"library file {path} does not exist")
    with fits.open(path, memmap=False) as hdul:
        names = [h.name for h in hdul]
        for needed in ("WAVE", "LABELS"):
            if needed not in names:
                raise InputError(f"{path} is not a template library (no {needed} extension)")
        header = hdul[0].header
        flux = np.asarray(hdul[0].data, np.float32)
        wave = np.asarray(hdul["WAVE"].data, np.float64)
        table = hdul["LABELS"].data
        labels = np.stack([np.asarray(table[n], np.float64) for n in LABEL_NAMES], axis=1)
        columns = {
            n: np.asarray(table[n]) for n in table.columns.names if n.lower() not in LABEL_NAMES
        }
        if META_KEY in header:
            meta = json.loads(header[META_KEY])
        else:
            meta = {m: header[k] for m, (k, _) in HEADER_KEYS.items() if k in header}
    if flux.ndim != 2:  # an empty library is stored without an image
        flux = np.zeros((labels.shape[0], wave.size), np.float32)
    columns = {k: v.astype(str) if v.dtype.kind in "US" else v for k, v in columns.items()}
    return Library(wave, flux, labels, meta, columns)
