"""Settings dataclasses built from config mappings (``config.section.to_dict()``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from sost_jax.errors import InputError

T = TypeVar("T")


def from_mapping(cls: type[T], d: Mapping[str, Any], what: str, **fixed: Any) -> T:
    """``cls(**d, **fixed)``, where a key of ``d`` that is not a field of the dataclass
    ``cls`` is a ValueError naming ``what`` (e.g. "emulator settings") and the known keys."""
    known = {f.name for f in fields(cls)} - set(fixed)
    unknown = sorted(set(d) - known)
    if unknown:
        raise InputError(f"unknown {what}: {unknown}; known: {sorted(known)}")
    return cls(**dict(d), **fixed)
