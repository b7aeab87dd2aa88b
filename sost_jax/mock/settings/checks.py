"""Checks of the mock survey's settings, each raising `InputError` naming the key."""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import fields
from typing import Any

from sost_jax.errors import InputError
from sost_jax.settings import Settings

__all__ = [
    "at_least",
    "check_types",
    "fraction",
    "nonnegative",
    "pair",
    "positive",
    "require",
    "type_hints",
]


def require(ok: bool, key: str, message: str) -> None:
    """Raise `InputError` "``key`` ``message``" unless ``ok``."""
    if not ok:
        raise InputError(f"{key} {message}")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved field types of the settings class ``cls``."""
    return typing.get_type_hints(cls)


def check_types(s: Any, where: str) -> None:
    """Every float field of ``s`` a finite number, every int field an integer."""
    hints = type_hints(type(s))
    for f in fields(s):
        value, hint = getattr(s, f.name), hints[f.name]
        if hint is float:
            require(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value),
                f"{where}.{f.name}",
                f"must be a finite number, got {value!r}",
            )
        elif hint is int:
            require(
                isinstance(value, int) and not isinstance(value, bool),
                f"{where}.{f.name}",
                f"must be an integer, got {value!r}",
            )


def at_least(s: Settings, minimum: int, *names: str) -> None:
    """Each integer field ``names`` of ``s`` >= ``minimum``."""
    for name in names:
        value = getattr(s, name)
        what = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        require(value >= minimum, f"{s.section}.{name}", f"must be {what}, got {value!r}")


def positive(s: Settings, *names: str) -> None:
    """Each field ``names`` of ``s`` > 0."""
    for name in names:
        value = getattr(s, name)
        require(value > 0, f"{s.section}.{name}", f"must be > 0, got {value!r}")


def nonnegative(s: Settings, *names: str) -> None:
    """Each field ``names`` of ``s`` >= 0."""
    for name in names:
        value = getattr(s, name)
        require(value >= 0, f"{s.section}.{name}", f"must be >= 0, got {value!r}")


def fraction(s: Settings, *names: str) -> None:
    """Each field ``names`` of ``s`` in [0, 1]."""
    for name in names:
        value = getattr(s, name)
        require(0.0 <= value <= 1.0, f"{s.section}.{name}", f"must lie in [0, 1], got {value!r}")


def pair(s: Settings, name: str, strict: bool = True) -> tuple[float, float]:
    """A (low, high) range field: two finite numbers, low < high (``strict``) or <=."""
    value, key = getattr(s, name), f"{s.section}.{name}"
    require(
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
        key,
        f"must be a (low, high) pair, got {value!r}",
    )
    low, high = (float(v) for v in value)
    require(math.isfinite(low) and math.isfinite(high), key, f"must be finite, got {value!r}")
    require(low < high if strict else low <= high, key, f"needs low < high, got {value!r}")
    return low, high
