"""Write mock observed spectra as LAMOST DR5+ low-resolution FITS files, with a catalogue.

The layout follows the survey's files: an empty primary HDU whose header carries the
observation and pipeline results (OBSID, RA, DEC, Z, Z_ERR, SNRU..SNRZ, CLASS, SUBCLASS,
VACUUM, HELIO, the log-linear wavelength solution ...), then a binary table ``COADD`` with a
single row and six float32 array columns FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK and
NORMALIZATION. Wavelengths are vacuum, heliocentric, log-linear from 3699.9863 Å with a
log10 step of 1e-4 (3909 pixels).

The bytes are assembled directly (headers formatted by astropy once per layout), which is
an order of magnitude faster than building HDU objects per file; the files read back with
any FITS reader.
"""

from __future__ import annotations

import csv
import datetime
import functools
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from astropy.io import fits

from sost_jax.errors import InputError
from sost_jax.mock.observe import band_snr, observed_spectra
from sost_jax.mock.params import sample_parameters
from sost_jax.mock.settings import MockSettings, mock_settings

__all__ = [
    "LAMOST_COLUMNS",
    "LAMOST_SNR_BANDS",
    "lamost_wavelength",
    "spectral_subclass",
    "write_lamost_fits",
    "write_mock_lamost_survey",
]

LAMOST_COLUMNS: tuple[str, ...] = (
    "FLUX",
    "IVAR",
    "WAVELENGTH",
    "ANDMASK",
    "ORMASK",
    "NORMALIZATION",
)
"""Columns of the COADD table, in file order."""

LAMOST_SNR_BANDS: dict[str, tuple[float, float]] = {
    "SNRU": (3500.0, 4000.0),
    "SNRG": (4000.0, 5500.0),
    "SNRR": (5500.0, 6900.0),
    "SNRI": (6900.0, 8400.0),
    "SNRZ": (8400.0, 9200.0),
}
"""Approximate u, g, r, i, z wavelength ranges [Å] used for the header S/N keywords."""

_WAVE_START = 3699.9863  # [Å] first pixel of the survey grid
_LOG10_START = 3.5682  # its log10, rounded as in the survey headers
_LOG10_STEP = 1.0e-4
_N_PIX = 3909
_BLOCK = 2880
_SURVEY_BLOCK = 1024  # spectra simulated per call in write_mock_lamost_survey
_MJD_EPOCH = datetime.datetime(1858, 11, 17)

# (key, default value, comment) of the primary header, in file order; None: a section
# comment line.
_PRIMARY_TEMPLATE: list[tuple[str, Any, str]] = [
    ("COMMENT", "--------FILE INFORMATION", None),
    ("FILENAME", "", "Name of this file"),
    ("OBSID", 0, "Unique identifier of the spectrum"),
    ("AUTHOR", "sost-jax mock survey", "Software that wrote the file"),
    ("DATA_V", "MOCK", "Data release (a simulated survey)"),
    ("N_EXTEN", 1, "Number of extensions"),
    ("NORM", 1, "1 if a normalised spectrum is included"),
    ("ORIGIN", "sost-jax", "Producer"),
    ("DATE", "2000-01-01T00:00:00", "File creation time (fixed for reproducibility)"),
    ("MOCK", True, "Simulated spectrum, not an observation"),
    ("MOCKSEED", 0, "Seed of the mock survey"),
    ("COMMENT", "--------TELESCOPE PARAMETERS", None),
    ("TELESCOP", "LAMOST", "Telescope"),
    ("LONGITUD", 117.58, "[deg] Site longitude"),
    ("LATITUDE", 40.39, "[deg] Site latitude"),
    ("COMMENT", "--------OBSERVATION PARAMETERS", None),
    ("DATE-OBS", "", "UTC of mid-exposure"),
    ("MJD", 0, "Modified Julian Day"),
    ("LMJD", 0, "Local Modified Julian Day"),
    ("PLANID", "MOCK", "Observing plan"),
    ("RA", 0.0, "[deg] Right ascension"),
    ("DEC", 0.0, "[deg] Declination"),
    ("RA_OBS", 0.0, "[deg] Right ascension pointed"),
    ("DEC_OBS", 0.0, "[deg] Declination pointed"),
    ("DESIG", "", "Designation from the coordinates"),
    ("FIBERID", 1, "Fibre number on the spectrograph"),
    ("OBJNAME", "", "Target name"),
    ("OBJTYPE", "Star", "Target type"),
    ("FIB_TYPE", "Obj", "Fibre type"),
    ("OBS_TYPE", "OBJ", "Exposure type"),
    ("RADECSYS", "FK5", "Coordinate system"),
    ("EQUINOX", 2000.0, "Equinox [yr]"),
    ("NEXP", 2, "Number of exposures"),
    ("EXPTIME", 1200.0, "[s] Exposure time"),
    ("COMMENT", "--------SPECTROGRAPH PARAMETERS", None),
    ("SPID", 1, "Spectrograph number"),
    ("COMMENT", "--------DATA REDUCTION PARAMETERS", None),
    ("HELIO", True, "Heliocentric frame"),
    ("HELIO_RV", 0.0, "[km/s] Heliocentric correction applied"),
    ("VACUUM", True, "Vacuum wavelengths"),
    ("NWORDER", 2, "Coefficients of the log10 wavelength solution"),
    ("WFITTYPE", "LOG-LINEAR", "log10(wavelength) linear in pixel"),
    ("COEFF0", _LOG10_START, "log10 wavelength of the first pixel"),
    ("COEFF1", _LOG10_STEP, "log10 wavelength step per pixel"),
    ("CRVAL1", _LOG10_START, "log10 wavelength of the first pixel"),
    ("CD1_1", _LOG10_STEP, "log10 wavelength step per pixel"),
    ("CRPIX1", 1, "Reference pixel (1-based)"),
    ("CTYPE1", "LINEAR", "Axis type"),
    ("DC-FLAG", 1, "1: log-linear dispersion"),
    ("COMMENT", "--------SPECTRA ANALYSIS RESULTS", None),
    ("VERSPIPE", "mock", "Pipeline version"),
    ("CLASS", "STAR", "Object class"),
    ("SUBCLASS", "", "Spectral subclass"),
    ("Z", 0.0, "Redshift"),
    ("Z_ERR", 0.0, "Redshift error"),
    ("ZFLAG", "MOCK", "Origin of the redshift"),
    ("SNRU", 0.0, "Median S/N per pixel, u band"),
    ("SNRG", 0.0, "Median S/N per pixel, g band"),
    ("SNRR", 0.0, "Median S/N per pixel, r band"),
    ("SNRI", 0.0, "Median S/N per pixel, i band"),
    ("SNRZ", 0.0, "Median S/N per pixel, z band"),
]

# Approximate Teff [K] of MK subclasses of dwarfs, for SUBCLASS.
_SUBCLASSES: tuple[tuple[float, str], ...] = (
    (3400.0, "M3"), (3550.0, "M2"), (3700.0, "M1"), (3850.0, "M0"), (4100.0, "K7"),
    (4400.0, "K5"), (4600.0, "K4"), (4800.0, "K3"), (4950.0, "K2"), (5100.0, "K1"),
    (5250.0, "K0"), (5400.0, "G8"), (5600.0, "G5"), (5800.0, "G2"), (5950.0, "G0"),
    (6100.0, "F9"), (6550.0, "F5"), (7000.0, "F2"), (7300.0, "F0"), (7800.0, "A7"),
    (8200.0, "A5"),
)  # fmt: skip


def lamost_wavelength(n_pix: int = _N_PIX, start: float = _WAVE_START) -> np.ndarray:
    """The LAMOST low-resolution pixel grid.

    Parameters
    ----------
    n_pix : int
        Number of pixels (3909 in DR5+ files).
    start : float
        Wavelength of the first pixel [Å].

    Returns
    -------
    wave : float64 [n_pix]
        Vacuum wavelengths [Å], ``start * 10**(1e-4 i)``: 3699.99-9099.1 Å.
    """
    return start * 10.0 ** (_LOG10_STEP * np.arange(n_pix))


def spectral_subclass(teff: np.ndarray | float) -> np.ndarray:
    """Rough MK subclass of a star from its Teff (nearest tabulated dwarf subclass).

    Parameters
    ----------
    teff : float or float [N]
        Effective temperature [K].

    Returns
    -------
    subclass : str array [N] (or 0-d)
        E.g. ``"G2"`` for 5800 K.
    """
    temps = np.array([t for t, _ in _SUBCLASSES])
    names = np.array([s for _, s in _SUBCLASSES])
    teff = np.asarray(teff, dtype=np.float64)
    return names[np.abs(teff[..., None] - temps).argmin(axis=-1)]


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % _BLOCK)


def _designation(ra: float, dec: float) -> str:
    hours = (ra % 360.0) / 15.0
    h = int(hours)
    m = int((hours - h) * 60.0)
    s = ((hours - h) * 60.0 - m) * 60.0
    sign = "-" if dec < 0 else "+"
    d_abs = abs(dec)
    d = int(d_abs)
    dm = int((d_abs - d) * 60.0)
    ds = ((d_abs - d) * 60.0 - dm) * 60.0
    return f"LAMOST J{h:02d}{m:02d}{min(s, 59.99):05.2f}{sign}{d:02d}{dm:02d}{min(ds, 59.9):04.1f}"


class _Layout:
    """Header templates for one pixel count, formatted once and reused for every file."""

    def __init__(self, n_pix: int):
        self.n_pix = n_pix
        cards = [
            ("SIMPLE", True, "Conforms to the FITS standard"),
            ("BITPIX", 16, "No data in this HDU"),
            ("NAXIS", 0, "No data in this HDU"),
            ("EXTEND", True, "Extensions follow"),
            *_PRIMARY_TEMPLATE,
        ]
        self.images = [
            fits.Card(key, value, comment).image
            if comment is not None
            else fits.Card(key, value).image
            for key, value, comment in cards
        ]
        self.index = {key: i for i, (key, _, _) in enumerate(cards) if key != "COMMENT"}
        self.comments = {key: comment for key, _, comment in cards}
        row = np.zeros(1, dtype=[(name, ">f4", (n_pix,)) for name in LAMOST_COLUMNS])
        table = fits.BinTableHDU(row, name="COADD")
        for i in range(1, len(LAMOST_COLUMNS) + 1):  # the survey files carry no TDIMn
            del table.header[f"TDIM{i}"]
        self.table_header = table.header.tostring().encode("ascii")
        self.row_dtype = np.dtype([(name, ">f4", (n_pix,)) for name in LAMOST_COLUMNS])

    def primary_bytes(self, values: Mapping[str, Any]) -> bytes:
        """Primary header with ``values`` replacing the template's (others appended)."""
        images = list(self.images)
        for key, value in values.items():
            i = self.index.get(key.upper())
            if i is None:
                images.append(fits.Card(key, value).image)
            else:
                images[i] = fits.Card(key.upper(), value, self.comments[key.upper()]).image
        images.append("END".ljust(80))
        return _pad("".join(images).encode("ascii"), b" ")

    def data_bytes(self, columns: Mapping[str, np.ndarray]) -> bytes:
        row = np.empty(1, dtype=self.row_dtype)
        for name in LAMOST_COLUMNS:
            row[name][0] = columns[name]
        return _pad(row.tobytes(), b"\0")


@functools.lru_cache(maxsize=8)
def _layout(n_pix: int) -> _Layout:
    """Cached layout per pixel count (a pure function of n_pix; never mutated)."""
    return _Layout(n_pix)


def _write(path: str | os.PathLike, layout: _Layout, header: Mapping[str, Any], columns) -> None:
    with open(path, "wb") as f:
        f.write(layout.primary_bytes(header))
        f.write(layout.table_header)
        f.write(layout.data_bytes(columns))


def write_lamost_fits(
    path: str | os.PathLike,
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    andmask: np.ndarray,
    ormask: np.ndarray,
    header: Mapping[str, Any],
    normalization: np.ndarray | None = None,
) -> None:
    """Write one spectrum as a LAMOST DR5+ low-resolution FITS file.

    Parameters
    ----------
    path : str or path-like
        Output file; overwritten if it exists.
    wave : float [P]
        Vacuum wavelengths [Å].
    flux, ivar : float [P]
        Flux and its inverse variance (0 for pixels without information).
    andmask, ormask : int or float [P]
        Pixel mask bits (stored as float32, as in the survey files).
    header : mapping
        Primary-header keywords to set, e.g. OBSID, RA, DEC, Z, Z_ERR, SNRG, SUBCLASS;
        unknown keys are appended. Defaults fill the other LAMOST keywords.
    normalization : float [P], optional
        Continuum-normalised flux; ones by default.

    Raises
    ------
    ValueError
        If the arrays do not share one length.
    """
    n_pix = np.shape(wave)[0]
    columns = {
        "FLUX": flux,
        "IVAR": ivar,
        "WAVELENGTH": wave,
        "ANDMASK": andmask,
        "ORMASK": ormask,
        "NORMALIZATION": np.ones(n_pix) if normalization is None else normalization,
    }
    for name, column in columns.items():
        if np.shape(column) != (n_pix,):
            raise InputError(f"{name} must have shape ({n_pix},), got {np.shape(column)}")
    values = {"FILENAME": os.path.basename(os.fspath(path)), **header}
    _write(path, _layout(n_pix), values, columns)


def _observation_dates(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[str]]:
    mjd = rng.uniform(55900.0, 59900.0, n)
    dates = [
        (_MJD_EPOCH + datetime.timedelta(days=float(m))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:22]
        for m in mjd
    ]
    return np.floor(mjd).astype(np.int64), dates


class _Pointings(NamedTuple):
    """Where, when and through which fibre each mock star was observed (all [n])."""

    ra: np.ndarray  # [deg]
    dec: np.ndarray  # [deg]
    fiber: np.ndarray
    spid: np.ndarray
    mjd: np.ndarray  # int64, the night's MJD
    dates: list[str]  # DATE-OBS


def _draw_pointings(rng: np.random.Generator, n: int) -> _Pointings:
    """Sky positions uniform on the sphere for Dec -10..60 deg, fibres, spectrographs and
    observation dates of ``n`` stars."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-10.0)), np.sin(np.radians(60.0)), n)))
    fiber = rng.integers(1, 251, n)
    spid = rng.integers(1, 17, n)
    mjd, dates = _observation_dates(rng, n)
    return _Pointings(ra, dec, fiber, spid, mjd, dates)


def _mock_header(
    obsid: int, seed: int, sky: _Pointings, i: int, subclass: str, pipeline: dict[str, float]
) -> dict[str, Any]:
    """The primary header of star ``i``: its observation and the pipeline's results
    (``pipeline``: Z, Z_ERR and the SNR* keys)."""
    return {
        "FILENAME": f"{obsid}.fits",
        "OBSID": obsid,
        "MOCKSEED": seed,
        "DATE-OBS": sky.dates[i],
        "MJD": int(sky.mjd[i]),
        "LMJD": int(sky.mjd[i]) + 1,
        "RA": round(float(sky.ra[i]), 6),
        "DEC": round(float(sky.dec[i]), 6),
        "RA_OBS": round(float(sky.ra[i]), 6),
        "DEC_OBS": round(float(sky.dec[i]), 6),
        "DESIG": _designation(sky.ra[i], sky.dec[i]),
        "FIBERID": int(sky.fiber[i]),
        "SPID": int(sky.spid[i]),
        "OBJNAME": f"mock{obsid}",
        "SUBCLASS": subclass,
        **pipeline,
    }


_LABEL_COLUMNS = ("id", "obsid", "filename", "ra", "dec", "snr_g", "teff", "logg", "feh", "rv")


def _write_block(
    out_dir: str | os.PathLike,
    layout: _Layout,
    wave: np.ndarray,
    sim: dict[str, np.ndarray],
    params: np.ndarray,
    sky: _Pointings,
    subclass: np.ndarray,
    obsids: np.ndarray,
    seed: int,
) -> list[tuple]:
    """Write the files of one block of simulated spectra ``sim`` (`observed_spectra` with
    truth) whose stars have ``params`` [n, 3], pointings ``sky``, subclasses and OBSIDs
    [n]; returns their rows of ``labels.csv`` (`_LABEL_COLUMNS`)."""
    snrs = {
        key: band_snr(sim["flux"], sim["ivar"], wave, band)
        for key, band in LAMOST_SNR_BANDS.items()
    }
    cont = sim["continuum"]
    norm = np.divide(sim["flux"], cont, out=np.zeros_like(cont), where=cont > 0)
    rows = []
    for j, obsid in enumerate(int(o) for o in obsids):
        pipeline = {
            "Z": float(sim["z_header"][j]),
            "Z_ERR": float(sim["z_err"][j]),
            **{key: round(float(v[j]), 2) for key, v in snrs.items()},
        }
        header = _mock_header(obsid, seed, sky, j, str(subclass[j]), pipeline)
        columns = {
            "FLUX": sim["flux"][j],
            "IVAR": sim["ivar"][j],
            "WAVELENGTH": wave,
            "ANDMASK": sim["andmask"][j],
            "ORMASK": sim["ormask"][j],
            "NORMALIZATION": norm[j],
        }
        _write(os.path.join(out_dir, header["FILENAME"]), layout, header, columns)
        rows.append(
            (
                str(obsid),
                obsid,
                header["FILENAME"],
                f"{sky.ra[j]:.6f}",
                f"{sky.dec[j]:.6f}",
                f"{sim['snr'][j]:.3f}",
                f"{params[j, 0]:.2f}",
                f"{params[j, 1]:.4f}",
                f"{params[j, 2]:.4f}",
                f"{sim['rv_true'][j]:.4f}",
            )
        )
    return rows


def write_mock_lamost_survey(
    out_dir: str | os.PathLike,
    n: int,
    cfg: MockSettings | None = None,
    seed: int | None = None,
    start_obsid: int = 100_000_001,
) -> str:
    """Simulate observed spectra and write them as LAMOST files plus a labels catalogue.

    Parameters
    ----------
    out_dir : str or path-like
        Directory to write into (created if needed): ``{obsid}.fits`` per spectrum and
        ``labels.csv``.
    n : int
        Number of spectra.
    cfg : MockSettings, optional
        Mock settings; defaults to ``MockSettings()``.
    seed : int, optional
        Seed of the survey (parameters, sky positions, observations); ``cfg.seed`` if None.
        The files are byte-identical for the same configuration, seed and n.
    start_obsid : int
        OBSID of the first spectrum; the others follow consecutively.

    Returns
    -------
    path : str
        Path of ``labels.csv``, with columns id, obsid, filename, ra, dec, snr_g, teff,
        logg, feh, rv (true parameters [K, dex, dex], true heliocentric RV [km/s], drawn
        g-band S/N; ``id`` is the OBSID as a string, the file name's stem).
    """
    cfg = mock_settings(cfg)
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    seed = cfg.seed if seed is None else int(seed)
    os.makedirs(out_dir, exist_ok=True)
    wave = lamost_wavelength()
    layout = _layout(wave.size)

    rng_params, rng_sky, rng_obs = np.random.default_rng(seed).spawn(3)
    params = sample_parameters(rng_params, n, cfg)
    sky = _draw_pointings(rng_sky, n)
    subclass = spectral_subclass(params[:, 0])
    obsids = start_obsid + np.arange(n)

    rows = []
    for start in range(0, n, _SURVEY_BLOCK):
        block = slice(start, min(start + _SURVEY_BLOCK, n))
        sim = observed_spectra(params[block], wave, cfg, rng_obs, return_truth=True)
        block_sky = _Pointings(*(field[block] for field in sky))
        rows += _write_block(
            out_dir,
            layout,
            wave,
            sim,
            params[block],
            block_sky,
            subclass[block],
            obsids[block],
            seed,
        )
    path = os.path.join(os.fspath(out_dir), "labels.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_LABEL_COLUMNS)
        writer.writerows(rows)
    return path
