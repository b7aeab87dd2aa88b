"""Settings as data: typed settings built from config mappings, and config files.

The bottom of the package: it knows no stage. Each stage's settings are a frozen dataclass
on the `Settings` base, built from its section of a config by ``from_dict`` (unknown keys
and wrong types are errors naming the key). A config is an
``ml_collections.ConfigDict``; a config file is a Python file whose ``get_config()`` returns
one (``configs/``), or the JSON that `save_config` writes beside every run's outputs.
Defaults and validation of a whole run live in `sost_jax.config`.
"""

from __future__ import annotations

import ast
import collections.abc
import difflib
import importlib.util
import json
import math
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import ml_collections

from sost_jax.errors import InputError
from sost_jax.runtime.files import write_text


class Settings:
    """Base of every stage's settings: a frozen dataclass that checks itself.

    A subclass is declared ``@dataclass(frozen=True)`` with typed fields and defaults, and
    checks its values in ``__post_init__`` (raising `InputError` naming the key).
    `from_dict` builds it from its section of a config: a key that is not a field is an
    error naming the nearest field, each value is checked against its field's type (an int
    where a float is expected is taken; a list where a tuple is; a nested mapping becomes
    the nested settings), so that a config reaching a stage has been checked whole.
    ``section`` names the config section in messages (e.g. "infer", "library.grid").
    """

    section: ClassVar[str] = ""

    @classmethod
    def from_dict(cls: type[S], d: Mapping[str, Any], section: str | None = None) -> S:
        """The settings of a config section ``d`` (unknown keys and wrong types: errors)."""
        section = cls.section if section is None else section
        if not isinstance(d, Mapping):
            raise InputError(f"config section {section!r} must be a mapping, got {d!r}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in fields(cls) if f.init]  # type: ignore[arg-type]
        values = {}
        for key, value in d.items():
            where = f"{section}.{key}" if section else key
            if key not in known:
                raise unknown_key_error(where, known, "")
            values[key] = _typed(value, hints[key], where)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (nested settings as dicts, tuples as lists): a config
        section, JSON-ready."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)  # type: ignore[arg-type]
            if f.init
        }


S = TypeVar("S", bound=Settings)


# Checks a settings class makes in its __post_init__, each an InputError naming the key.


def require(ok: bool, key: str, message: str) -> None:
    """Raise `InputError` "``key`` ``message``" unless ``ok``."""
    if not ok:
        raise InputError(f"{key} {message}")


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


def one_of(s: Settings, name: str, allowed: Sequence[str]) -> None:
    """The field ``name`` of ``s`` one of ``allowed``."""
    value = getattr(s, name)
    require(
        value in allowed,
        f"{s.section}.{name}",
        f"must be one of {', '.join(allowed)}; got {value!r}",
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` of the setting ``where``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _typed(value, option, where)
            except InputError:
                continue
        raise _type_error(where, " or ".join(_name(a) for a in options), value)
    if isinstance(hint, type) and issubclass(hint, Settings):
        return value if isinstance(value, hint) else hint.from_dict(value, where)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):  # settings of their own kind
        return value if isinstance(value, hint) else hint.from_dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(where, "a number", value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(where, "an integer", value)
    if hint is bool or hint is str:
        if isinstance(value, hint):
            return value
        raise _type_error(where, "true or false" if hint is bool else "a string", value)
    if origin is tuple:
        if not isinstance(value, tuple | list):
            raise _type_error(where, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise _type_error(where, f"a list of {len(args)}", value)
        return tuple(
            _typed(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (dict, Mapping, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise _type_error(where, "a mapping", value)
        return {k: _plain(v) if not isinstance(v, Mapping) else dict(v) for k, v in value.items()}
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _type_error(where: str, expected: str, value: Any) -> InputError:
    return InputError(f"config key {where!r} must be {expected}, got {value!r}")


def read_config_file(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """The config of a ``.py`` file (its ``get_config()``) or of a saved ``.json``, as
    written (no defaults added, no validation)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix == ".json":
        return ml_collections.ConfigDict(json.loads(path.read_text()))
    spec = importlib.util.spec_from_file_location(f"sost_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import config file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise InputError(f"config file {path} defines no get_config()")
    try:
        return module.get_config()
    except (AttributeError, TypeError) as err:  # a locked config refused a key or a type
        if not _from_config_dict(err):
            raise
        raise InputError(
            f"config file {path}{_line_in(err, path)}: {_locked_message(err, path)}"
        ) from None


def _frames(err: BaseException) -> list[Any]:
    frames, tb = [], err.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


def _from_config_dict(err: BaseException) -> bool:
    """Whether ``err`` was raised inside ml_collections (a locked config refusing a key,
    or a value of the wrong type), not by the config file's own code."""
    frames = _frames(err)
    return bool(frames) and "ml_collections" in frames[-1].tb_frame.f_code.co_filename


def _line_in(err: BaseException, path: Path) -> str:
    """The config file's line the error was raised from, as ", line N" (or "")."""
    lines = [tb.tb_lineno for tb in _frames(err) if Path(tb.tb_frame.f_code.co_filename) == path]
    return f", line {lines[-1]}" if lines else ""


def _section_path(err: BaseException, path: Path) -> str:
    """The section path ("train.") of the ConfigDict that refused a key: the refusing
    ConfigDict found among the sections of a config the file's code holds."""
    frames = _frames(err)
    refusing = [
        tb.tb_frame.f_locals.get("self")
        for tb in frames
        if "ml_collections" in tb.tb_frame.f_code.co_filename
    ]
    child = next((s for s in refusing if isinstance(s, ml_collections.ConfigDict)), None)
    roots = [
        v
        for tb in frames
        if Path(tb.tb_frame.f_code.co_filename) == path
        for v in tb.tb_frame.f_locals.values()
        if isinstance(v, ml_collections.ConfigDict)
    ]

    def find(node: ml_collections.ConfigDict, prefix: str) -> str | None:
        if node is child:
            return prefix
        for key in node.keys():
            value = node[key]
            if isinstance(value, ml_collections.ConfigDict):
                found = find(value, f"{prefix}{key}.")
                if found is not None:
                    return found
        return None

    for root in roots:
        found = find(root, "")
        if found is not None:
            return found
    return ""


def _locked_message(err: BaseException, path: Path) -> str:
    """ml_collections' message, short: the key (with its section) and the nearest one."""
    text = str(err).replace("\\n", "\n").replace("\\'", "'").strip("'\"")
    key = re.search(r'Key "([^"]+)" does not exist', text) or re.match(r"'?([A-Za-z_]\w*)'?", text)
    near = re.search(r'Did you mean "([^"]+)"', text)
    if isinstance(err, AttributeError) and key:
        prefix = _section_path(err, path)
        hint = f"; did you mean {prefix + near.group(1)!r}?" if near else ""
        return f"unknown config key {prefix + key.group(1)!r}{hint}"
    return text.splitlines()[0]


def _parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def unknown_key_error(key: str, known: Sequence[str], where: str) -> InputError:
    """The error for a config key ``key`` that is not among ``known``, naming the nearest
    known one (a misspelling, most often). ``where`` says where the key was found."""
    *parents, leaf = key.split(".")
    near = difflib.get_close_matches(leaf, list(known), n=2, cutoff=0.6)
    prefix = ".".join(parents) + "." if parents else ""
    if near:
        hint = "did you mean " + " or ".join(repr(prefix + k) for k in near) + "?"
    else:
        hint = f"known: {', '.join(sorted(known))}"
    where = f" {where}" if where else ""
    return InputError(f"unknown config key {key!r}{where}; {hint}")


def check_known_keys(
    config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict, where: str
) -> None:
    """Raise `unknown_key_error` for the first key of ``config`` that ``reference`` lacks.

    Sections are compared recursively. New top-level sections are allowed: a benchmark's
    or a user's own settings (e.g. ``miles``) live beside the pipeline's.
    """

    def walk(node: ml_collections.ConfigDict, ref: ml_collections.ConfigDict, path: str) -> None:
        for key in node.keys():
            if key not in ref:
                if path:
                    raise unknown_key_error(path + key, list(ref.keys()), where)
                continue
            if isinstance(node[key], ml_collections.ConfigDict) and isinstance(
                ref[key], ml_collections.ConfigDict
            ):
                walk(node[key], ref[key], f"{path}{key}.")

    walk(config, reference, "")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
    """Apply ``section.key=value`` overrides in place; unknown keys are an error."""
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} is not of the form key.path=value")
        key, text = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = config
        for depth, part in enumerate(parents):
            if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                section = ".".join(parents[: depth + 1])
                raise unknown_key_error(section, list(node.keys()), f"in override {item!r}")
            node = node[part]
        if leaf not in node:
            raise unknown_key_error(key.strip(), list(node.keys()), f"in override {item!r}")
        value = _parse_value(text)
        old = node[leaf]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, list) and isinstance(value, tuple):
            value = list(value)
        if old is not None and type(value) is not type(old):
            raise InputError(f"config key {key!r} expects {type(old).__name__}, got {text!r}")
        node[leaf] = value


def save_config(config: ml_collections.ConfigDict | Settings, path: str | os.PathLike) -> None:
    """Write the resolved config (a ConfigDict or typed settings) as JSON, readable back
    with `load_config`, atomically: every process of a multi-process run writes the same
    file."""
    data = config.to_dict() if isinstance(config, Settings) else json.loads(config.to_json())
    write_text(path, json.dumps(data, indent=1, sort_keys=True))
