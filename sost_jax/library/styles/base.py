"""The style-source protocol, its context, and the simple sources (prior, fixed, callable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from sost_jax.errors import InputError

Array = jax.Array

SPEC_KINDS = ("prior", "fixed", "gaussian", "mixture", "matched")
"""The kinds of source a spec string can name (`style_source_from_spec`)."""


@dataclass(frozen=True)
class StyleContext:
    """What a style source may look at besides the key and the count.

    Attributes
    ----------
    flux : float32 [n, P], optional
        The synthetic spectra (normalised) about to be translated.
    labels : float [n, 3], optional
        Their Teff [K], log g [dex], [Fe/H] [dex].
    """

    flux: Any = None
    labels: Any = None


@runtime_checkable
class StyleSource(Protocol):
    """``source(key, n, context=None) -> styles`` float32 [n, d], the same for the same key.

    Attributes
    ----------
    dim : int
        Style code length d.
    spec : str
        Short description for provenance (a `style_source_from_spec` string when possible).
    """

    dim: int
    spec: str

    def __call__(
        self, key: Array, n: int, context: StyleContext | None = None
    ) -> Array: ...  # pragma: no cover


def _check_n(n: int) -> int:
    n = int(n)
    if n < 0:
        raise InputError(f"the number of styles must be >= 0, got {n}")
    return n


def _format_vector(v: np.ndarray) -> str:
    return ",".join(f"{x:.9g}" for x in np.asarray(v, np.float64))


class PriorStyle:
    """Styles from the N(0, 1) prior of the style space (as during training)."""

    def __init__(self, dim: int):
        if int(dim) < 1:
            raise InputError(f"style dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.spec = "prior"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        return jax.random.normal(key, (_check_n(n), self.dim), jnp.float32)

    def __repr__(self) -> str:
        return f"PriorStyle(dim={self.dim})"


class FixedStyle:
    """One style vector for every spectrum.

    Parameters
    ----------
    vector : [d]
    """

    def __init__(self, vector: Any):
        v = np.asarray(vector, np.float32)
        if v.ndim != 1 or v.size < 1 or not np.isfinite(v).all():
            raise InputError(f"a fixed style must be a finite [d] vector, got shape {v.shape}")
        self.vector = v
        self.dim = int(v.size)
        self.spec = f"fixed:{_format_vector(v)}"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        return jnp.broadcast_to(jnp.asarray(self.vector), (_check_n(n), self.dim))

    def __repr__(self) -> str:
        return f"FixedStyle({self.spec[6:]})"


class CallableStyle:
    """Styles from any function ``fn(key, n) -> [n, d]``.

    Parameters
    ----------
    fn : callable
    dim : int
        d; the output shape is checked against it.
    name : str, optional
        For ``spec`` (default the function's name).
    """

    def __init__(self, fn: Callable[[Array, int], Any], dim: int, name: str | None = None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.dim = int(dim)
        self.spec = f"callable:{name or getattr(fn, '__qualname__', type(fn).__name__)}"

    def __call__(self, key: Array, n: int, context: StyleContext | None = None) -> Array:
        n = _check_n(n)
        out = jnp.asarray(self.fn(key, n), jnp.float32)
        if out.shape != (n, self.dim):
            raise InputError(f"{self.spec} returned shape {out.shape}, expected {(n, self.dim)}")
        return out

    def __repr__(self) -> str:
        return f"CallableStyle({self.spec[9:]}, dim={self.dim})"


def draw(
    source: StyleSource, key: Array, n: int, context: StyleContext | None = None
) -> tuple[Array, dict[str, np.ndarray]]:
    """A source's styles [n, d] and the per-template columns it records (a source with a
    ``styles_and_columns`` method, e.g. the matched one's partners; none for the others)."""
    with_columns = getattr(source, "styles_and_columns", None)
    if with_columns is not None:
        return with_columns(key, n, context)
    return source(key, n, context), {}


def describe(source: Any) -> str:
    """A source's ``spec`` (its repr for callables without one)."""
    return str(getattr(source, "spec", repr(source)))
