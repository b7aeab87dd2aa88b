"""The configuration of a whole run: defaults, validation, loading with overrides.

A run's settings are `RunSettings`: one typed section per stage, each the stage's own
settings dataclass that checks itself (`PrepareSettings`, `ModelSettings`,
`TrainSettings`, `LibrarySettings`, `InferSettings`, ...). The ``ml_collections.ConfigDict``
lives only at the boundary, where config files and ``--set`` overrides edit it: it is
locked, so that a key it does not have is an error naming the nearest one. This module sits
above the stages and no stage imports it; reading config files, overrides and saving are
`sost_jax.settings`'s (the bottom of the package).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import ml_collections

from sost_jax.data.prepare import PrepareSettings
from sost_jax.data.settings import DataSettings
from sost_jax.demo.settings import DemoSettings
from sost_jax.errors import InputError
from sost_jax.inference.estimate import InferSettings
from sost_jax.library.emulator import EmulatorSettings
from sost_jax.library.settings import LibrarySettings
from sost_jax.mock.settings import MockSettings
from sost_jax.settings import (
    Settings,
    apply_overrides,
    check_known_keys,
    read_config_file,
    save_config,
)
from sost_jax.sost.settings import DisSettings, LossSettings, ModelSettings, TrainSettings


@dataclass(frozen=True)
class RunSettings(Settings):
    """The settings of a whole run, one typed section per stage (each checks itself).

    Attributes
    ----------
    preprocess : PrepareSettings
        Wavelength grid, resolution and normalisation (LAMOST-like by default: 3900-8699 Å
        on a 1 Å grid, 4800 pixels).
    data : DataSettings
        Reading files: reader, reader processes, shard and chunk sizes.
    mock : MockSettings
        The embedded mock survey: every knob of the simulator.
    demo : DemoSettings
        The demo's data sets and the pairing labels' errors.
    model, dis : ModelSettings, DisSettings
        Generator (both auto-encoders) and discriminators.
    loss : LossSettings
        Loss weights: sost-jax's defaults; ``configs/paper.py`` and ``configs/reference.py``
        hold the paper's and the reference code's.
    train : TrainSettings
        The two domains' prepared stores, Adam and its linear decay, bookkeeping.
    emulator : EmulatorSettings
        The Payne-style emulator of the synthetic grid.
    library : LibrarySettings
        The template library's cells and style codes.
    infer : InferSettings
        Template matching (and the fit) in survey inference.
    """

    preprocess: PrepareSettings = field(default_factory=PrepareSettings)
    data: DataSettings = field(default_factory=DataSettings)
    mock: MockSettings = field(default_factory=MockSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    dis: DisSettings = field(default_factory=DisSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    library: LibrarySettings = field(default_factory=LibrarySettings)
    infer: InferSettings = field(default_factory=InferSettings)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict | Mapping[str, Any]) -> RunSettings:
        """The typed settings of a config; its own top-level sections (a benchmark's) are
        left to their reader."""
        d = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
        names = {f.name for f in fields(cls)}
        return cls.from_dict({k: v for k, v in d.items() if k in names})


def default_config() -> ml_collections.ConfigDict:
    """The defaults (`RunSettings`) as a locked ``ConfigDict``: a config file may change
    its values but not add keys (a misspelt key is an error naming the nearest one)."""
    config = ml_collections.ConfigDict(RunSettings().to_dict())
    config.lock()
    return config


CONFIGS = Path(__file__).resolve().parent / "configs"
"""The shipped config files (``configs/`` at the repository's top links here)."""


def shipped_config(name: str) -> ml_collections.ConfigDict:
    """A shipped config file by name (e.g. ``"cpu"`` for ``configs/cpu.py``), as written."""
    path = CONFIGS / f"{name}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.py")))
        raise InputError(f"no shipped config {name!r}; shipped: {known}")
    return read_config_file(path)


def cpu_config() -> ml_collections.ConfigDict:
    """``configs/cpu.py``: a SOST small enough to train on 2 CPU cores in about 10 minutes,
    the demo's defaults (the file is the one source of these settings)."""
    return shipped_config("cpu")


def validate(config: ml_collections.ConfigDict) -> RunSettings:
    """The typed settings of ``config``; `InputError` naming the key when one cannot work."""
    return RunSettings.from_config(config)


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    base: Callable[[], ml_collections.ConfigDict] | None = None,
) -> ml_collections.ConfigDict:
    """Load a config file (``get_config()``), or the defaults, apply overrides, validate.

    Parameters
    ----------
    path : path, optional
        A ``.py`` file defining ``get_config()``, or a ``.json`` file written by
        `save_config`. None gives `default_config`. A key of a ``.py`` file that the
        defaults lack (``train.step`` for ``train.steps``) is an `InputError` naming the
        nearest known key; new top-level sections (a benchmark's own) are allowed.
    overrides : list of str
        ``key.path=value`` strings, e.g. ``preprocess.grid_step=2.0``.
    base : callable, optional
        The config without a file (default `default_config`).
    """
    if path is None:
        config = (base or default_config)()
    elif Path(path).suffix == ".json":  # a saved run: keys added since fall back to defaults
        config = default_config()
        with config.unlocked():  # its own sections (a benchmark's) come back too
            config.update(read_config_file(path))
    else:  # a config file: every key must be one the defaults know (typos are errors)
        config = read_config_file(path)
        check_known_keys(config, default_config(), f"in config file {path}")
    apply_overrides(config, overrides)
    validate(config)
    return config


def load_settings(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    base: Callable[[], ml_collections.ConfigDict] | None = None,
) -> RunSettings:
    """The typed settings of a config file with overrides (`load_config`, `validate`)."""
    return validate(load_config(path, overrides, base))


__all__ = [
    "apply_overrides",
    "cpu_config",
    "shipped_config",
    "default_config",
    "load_config",
    "load_settings",
    "RunSettings",
    "save_config",
    "validate",
]
