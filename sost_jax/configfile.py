"""Config files: reading them, command-line overrides, saving the resolved config.

The bottom of the package: it knows no stage. A config is an ``ml_collections.ConfigDict``;
a config file is a Python file whose ``get_config()`` returns one (``configs/``) or the JSON
that `save_config` writes beside every run's outputs. Defaults and validation live in
`sost_jax.config`, built from each stage's own settings.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path

import ml_collections

from sost_jax.errors import InputError
from sost_jax.files import write_text


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
    return module.get_config()


def _parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
    """Apply ``section.key=value`` overrides in place; unknown keys are an error."""
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} is not of the form key.path=value")
        key, text = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = config
        for part in parents:
            if part not in node:
                raise InputError(f"unknown config section {part!r} in override {item!r}")
            node = node[part]
        if leaf not in node:
            raise InputError(f"unknown config key {key!r}; known here: {sorted(node.keys())}")
        value = _parse_value(text)
        old = node[leaf]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, list) and isinstance(value, tuple):
            value = list(value)
        if old is not None and type(value) is not type(old):
            raise InputError(f"config key {key!r} expects {type(old).__name__}, got {text!r}")
        node[leaf] = value


def save_config(config: ml_collections.ConfigDict, path: str | os.PathLike) -> None:
    """Write the resolved config as JSON (readable back with `load_config`), atomically:
    every process of a multi-process run writes the same file."""
    write_text(path, config.to_json(indent=1, sort_keys=True))
