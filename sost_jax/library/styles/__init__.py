"""Style sources: where the style code comes from when synthetic spectra are translated.

A MUNIT decoder needs a style code [d] for every spectrum it writes. SOST translates a
synthetic spectrum (domain "a") into the observed domain ("b") with the content code of the
synthetic spectrum and a style code of domain "b". That style can come from

* the observed spectrum that best matches the synthetic one, through the observed domain's
  style encoder (`MatchedObservedStyle`; what Yan et al. did);
* the N(0, 1) prior the style codes were trained against (`PriorStyle`);
* a user-supplied prior: one fixed vector (`FixedStyle`), a Gaussian (`GaussianStyle`) or a
  Gaussian mixture (`MixtureStyle`) fitted to the style codes of any set of observed spectra
  (`fit_gaussian`, `fit_mixture`; saved and loaded as ``.npz``), or any function
  ``(key, n) -> styles [n, d]`` (`CallableStyle`).

Every source is a `StyleSource`: a callable ``source(key, n, context) -> styles [n, d]``
(float32), deterministic for a given key. ``context`` (`StyleContext`) carries the synthetic
spectra being translated and their labels; only the matched source reads it. Each source has
a ``spec``, a short text naming it, written into a library's provenance.

Config files and command lines name a source with a string (`style_source_from_spec`):

=================  ============================================================
``prior``          N(0, 1)
``fixed:v1,...``   the fixed vector (v1, ..., vd)
``gaussian:PATH``  a Gaussian saved with `GaussianStyle.save`
``mixture:PATH``   a Gaussian mixture saved with `MixtureStyle.save`
``matched``        the style of the best chi2-matching observed spectrum (the paper)
=================  ============================================================

Example
-------
Fit a two-component mixture to the styles of a set of observed spectra, save it, and use it
to translate a library::

    from sost_jax.library import styles
    from sost_jax.sost.translation import translator_from_run

    tr = translator_from_run("runs/sost")
    codes = tr.observed_styles(observed_flux)          # [M, d], style encoder of domain b
    styles.fit_mixture(codes, n_components=2, seed=0).save("styles.npz")

    source = styles.style_source_from_spec("mixture:styles.npz", tr.style_dim)
    s = source(jax.random.PRNGKey(0), 100)             # [100, d]
    translated = tr(synthetic_flux, s)                 # [100, P]

and for the paper's choice::

    source = styles.style_source_from_spec(
        "matched", tr.style_dim, observed=PreparedStore("stores/observed"),
        encode=tr.observed_styles,
    )
    s = source(key, n, styles.StyleContext(flux=synthetic_flux))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.library.styles.base import (
    SPEC_KINDS,
    CallableStyle,
    FixedStyle,
    PriorStyle,
    StyleContext,
    StyleSource,
    describe,
    draw,
)
from sost_jax.library.styles.matched import MatchedObservedStyle
from sost_jax.library.styles.priors import (
    GaussianStyle,
    MixtureStyle,
    fit_gaussian,
    fit_mixture,
    load_prior,
)


def style_source_from_spec(
    spec: str,
    dim: int,
    *,
    observed: PreparedStore | str | os.PathLike | tuple[Any, Any] | None = None,
    encode: Callable[[Any], Any] | None = None,
    match_weight: str = "mask",
    match_min_snr: float = 0.0,
) -> StyleSource:
    """The style source named by a config or command-line string.

    Parameters
    ----------
    spec : str
        ``prior``, ``fixed:v1,v2,...``, ``gaussian:PATH``, ``mixture:PATH`` or ``matched``
        (see the module docstring).
    dim : int
        The model's style dimension d; fixed vectors and loaded priors must have it.
    observed : PreparedStore, path to one, or (flux, weight); only for ``matched``
        The observed spectra to choose partners from.
    encode : callable; only for ``matched``
        The observed domain's style encoder, ``flux [B, P] -> styles [B, d]``.
    match_weight, match_min_snr : only for ``matched``
        Pixel weights ("mask" or "ivar") and the partners' S/N cut (`MatchedObservedStyle`).

    Raises
    ------
    ValueError
        An unknown kind, a malformed vector, a dimension other than ``dim``, or ``matched``
        without ``observed`` and ``encode``.
    """
    text = str(spec).strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind not in SPEC_KINDS:
        raise InputError(
            f"unknown style source {spec!r}: expected one of 'prior', 'fixed:v1,v2,...', "
            "'gaussian:PATH', 'mixture:PATH', 'matched'"
        )
    takes_arg = kind in ("fixed", "gaussian", "mixture")
    if takes_arg and not arg:
        raise InputError(f"style source {kind!r} needs an argument: '{kind}:...' (got {spec!r})")
    if not takes_arg and sep:
        raise InputError(f"style source {kind!r} takes no argument (got {spec!r})")

    source: StyleSource
    if kind == "prior":
        source = PriorStyle(dim)
    elif kind == "fixed":
        try:
            values = [float(v) for v in arg.split(",")]
        except ValueError:
            raise InputError(f"'fixed:' needs comma-separated numbers, got {arg!r}") from None
        source = FixedStyle(values)
    elif kind == "gaussian":
        source = GaussianStyle.load(arg)
    elif kind == "mixture":
        source = MixtureStyle.load(arg)
    else:
        if observed is None or encode is None:
            raise InputError(
                "style source 'matched' needs the observed spectra (observed=) and the "
                "observed domain's style encoder (encode=)"
            )
        if isinstance(observed, (str, os.PathLike)):
            observed = PreparedStore(observed)
        source = MatchedObservedStyle(
            observed, encode, dim, weighting=match_weight, min_snr=match_min_snr
        )
    if source.dim != int(dim):
        raise InputError(f"style source {spec!r} has dimension {source.dim}, the model {dim}")
    return source


__all__ = [
    "SPEC_KINDS",
    "CallableStyle",
    "FixedStyle",
    "GaussianStyle",
    "MatchedObservedStyle",
    "MixtureStyle",
    "PriorStyle",
    "StyleContext",
    "StyleSource",
    "describe",
    "draw",
    "fit_gaussian",
    "fit_mixture",
    "load_prior",
    "style_source_from_spec",
]
