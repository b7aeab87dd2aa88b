"""The mock survey's own settings check: every float field finite, every int an integer
(for settings built directly, not through ``from_dict``); the other checks are
`sost_jax.settings`'."""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import fields
from typing import Any

from sost_jax.settings import require

__all__ = ["check_types", "type_hints"]


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
