"""Python entry point for users' own spectra: spectra in, an astropy table out.

`parameterise` takes `specutils` spectra (``Spectrum1D`` / ``Spectrum``: one, a list, or one with a
2-D flux of several spectra on a shared axis), or plain arrays, and returns the catalogue of
`sost_jax.inference.catalogue` as an `astropy.table.Table` with units (K, dex, km/s). The spectra go
through the command line's stages in memory, writing no file:
`sost_jax.data.prepare.prepare_in_memory` (resampling onto the library's grid, rest frame, continuum
normalisation, coverage checks), then `sost_jax.inference.estimate.Estimator` (grid match, and with
``method="fit"`` the continuous fit), the core `sost-jax infer` runs through. Spectra that cannot be
used are listed in the table's ``meta["failures"]``, never raised.

specutils is duck-typed (``spectral_axis``, ``flux``, ``uncertainty``, ``mask``,
``redshift``), so it is needed only by whoever builds the spectra.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sost_jax.errors import InputError

Spectra = Any
"""A specutils spectrum, a list of them, or a tuple (wave, flux, ivar) of arrays."""


def _from_specutils(spectrum: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(wave [P] Å, flux [N, P], ivar [N, P], z [N]) of one specutils spectrum."""
    import astropy.units as u
    from astropy.nddata import InverseVariance

    wave = np.asarray(spectrum.spectral_axis.to_value(u.AA, equivalencies=u.spectral()), float)
    flux = np.atleast_2d(np.asarray(spectrum.flux.value, np.float64))
    if spectrum.uncertainty is None:
        warnings.warn(
            "a spectrum has no uncertainty: equal weights, errors from its fit's residuals",
            stacklevel=3,
        )
        ivar = np.ones_like(flux)
    else:
        ivar = np.atleast_2d(np.asarray(spectrum.uncertainty.represent_as(InverseVariance).array))
        ivar = np.broadcast_to(ivar, flux.shape).astype(np.float64)
    if spectrum.mask is not None:
        ivar = np.where(np.broadcast_to(np.asarray(spectrum.mask, bool), flux.shape), 0.0, ivar)
    ivar = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    redshift = getattr(spectrum, "redshift", None)
    z = 0.0 if redshift is None else float(np.asarray(getattr(redshift, "value", redshift)))
    return wave, flux, ivar, np.full(flux.shape[0], z)


def as_arrays(spectra: Spectra) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Waves (one [P] per spectrum), flux [N, P], ivar [N, P], redshift [N] of ``spectra``.

    Spectra of different lengths are padded with ivar 0 (no data) to the longest.
    """
    if isinstance(spectra, tuple) and len(spectra) == 3:
        wave, flux, ivar = (np.asarray(a, np.float64) for a in spectra)
        flux, ivar = np.atleast_2d(flux), np.atleast_2d(ivar)
        if flux.shape != ivar.shape or wave.shape not in (flux.shape[1:], flux.shape):
            raise InputError(
                f"arrays must be wave [P] or [N, P], flux and ivar [N, P]; got {wave.shape}, "
                f"{flux.shape}, {ivar.shape}"
            )
        waves = [wave] * len(flux) if wave.ndim == 1 else list(wave)
        return waves, flux, ivar, np.zeros(len(flux))
    items = spectra if isinstance(spectra, Sequence) else [spectra]
    if not items or not all(hasattr(s, "spectral_axis") and hasattr(s, "flux") for s in items):
        raise InputError(
            "give specutils spectra (Spectrum1D / Spectrum), a list of them, or a tuple "
            "(wave [Å], flux, ivar) of arrays"
        )
    waves, fluxes, ivars, zs = [], [], [], []
    for spectrum in items:
        wave, flux, ivar, z = _from_specutils(spectrum)
        waves += [wave] * len(flux)
        fluxes += list(flux)
        ivars += list(ivar)
        zs += list(z)
    width = max(len(w) for w in waves)

    def pad(rows: list[np.ndarray], fill: float) -> np.ndarray:
        out = np.full((len(rows), width), fill)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    last = [w[-1] for w in waves]  # padded wavelengths continue past the end, without data
    padded = [
        np.concatenate([w, end + 1.0 + np.arange(width - len(w))])
        for w, end in zip(waves, last, strict=True)
    ]
    return padded, pad(fluxes, 1.0), pad(ivars, 0.0), np.asarray(zs)


def parameterise(
    spectra: Spectra,
    library: str | os.PathLike,
    *,
    config: str | os.PathLike | None = None,
    method: str = "fit",
    ids: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> Any:
    """Teff, log g, [Fe/H] (and with a fit the RV) of spectra, as an astropy table.

    Parameters
    ----------
    spectra : specutils spectrum, list of them, or (wave, flux, ivar)
        In any units of flux; wavelengths in any spectral unit (converted to Å). A
        spectrum's ``redshift`` is removed (rest frame); masked pixels and pixels with
        non-positive or non-finite inverse variance are left out.
    library : path
        A template library (`sost_jax.library.templates`); ``method="fit"`` needs one that names its
        fit emulator (built by `sost-jax library`).
    config : path, optional
        The config the library was made with (its preprocessing); default sost-jax's.
    method : str
        "fit" (grid match, then the continuous fit) or "grid" (the paper's estimate).
    ids : N strings, optional
        Row names (default "0", "1", ...).
    overrides : KEY=VALUE strings
        Config overrides, as ``--set`` of the command line.

    Returns
    -------
    astropy.table.Table
        One row per usable spectrum (columns of `sost_jax.inference.catalogue`, with units);
        ``meta["failures"]`` lists (id, reason) of the others.
    """
    from sost_jax.config import load_settings
    from sost_jax.data.prepare import prepare_in_memory
    from sost_jax.inference.catalogue import catalogue_table
    from sost_jax.inference.estimate import Estimator

    run = load_settings(config, list(overrides))
    settings = replace(run.infer, method=method)
    waves, flux, ivar, z = as_arrays(spectra)
    n = len(flux)
    names = np.arange(n).astype(str) if ids is None else np.asarray(ids).astype(str)
    if names.shape != (n,):
        raise InputError(f"give one id per spectrum ({n}), got {names.shape}")
    prepared = prepare_in_memory(
        np.stack(waves), flux, ivar, run.preprocess, meta={"id": names}, z=z
    )
    columns = Estimator(library, settings)(prepared["flux"], prepared["weight"], prepared["meta"])
    table = catalogue_table(columns)
    failures = list(prepared["failures"])
    table.meta = {"failures": failures, "library": str(library), "method": method}
    return table
