"""The configuration of a whole run: defaults, validation, loading with overrides.

Configs are data: an ``ml_collections.ConfigDict`` whose sections map to the pipeline's
stages. This module sits above the stages: each section's defaults and checks are its
stage's own settings (`PrepareSettings`, `EmulatorSettings`, `LibraryGrid`, `InferSettings`,
``models.MODEL_DEFAULTS``, ...), and no stage imports it. Reading config files, overrides
and saving are `sost_jax.settings`'s (the bottom of the package).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections

from sost_jax.data.prepare import PrepareSettings
from sost_jax.errors import InputError
from sost_jax.inference.estimate import InferSettings
from sost_jax.library.cells import LibraryGrid
from sost_jax.library.emulator import EmulatorSettings
from sost_jax.library.styles import SPEC_KINDS
from sost_jax.mock.config import default_mock_config, validate_mock_config
from sost_jax.settings import (
    apply_overrides,
    check_known_keys,
    read_config_file,
    save_config,
)
from sost_jax.sost.models import DIS_DEFAULTS, MODEL_DEFAULTS
from sost_jax.sost.pairing import LabelErrors


def default_config() -> ml_collections.ConfigDict:
    """The defaults: LAMOST-like data on the 3900-8699 Å, 1 Å grid (4800 pixels)."""
    c = ml_collections.ConfigDict()
    # Wavelength grid, resolution and normalisation: see PrepareSettings for each field.
    c.preprocess = PrepareSettings().to_dict()
    # Reading files: reader "auto" | "lamost" | "fits1d"; reader processes (-1: one per
    # core, at most 8); spectra per shard on disk and per chunk handed to a reader process.
    c.data = ml_collections.ConfigDict(
        {"reader": "auto", "workers": -1, "shard_size": 4096, "chunk_size": 256}
    )
    # The embedded mock survey: every knob of the simulator (see sost_jax.mock.config).
    c.mock = default_mock_config()
    # The demo: sizes of the mock data sets (see sost_jax.mock.survey), of the reference
    # catalogue that chooses the library cells, points per group in the t-SNE figure, and
    # the errors of the observed training stars' reference labels (Teff [K], log g [dex],
    # [Fe/H] [dex]; Gaussian) that choose their synthetic partners (loss.paired).
    c.demo = ml_collections.ConfigDict(
        {
            "n_synthetic": 4000,
            "n_observed": 4000,
            "n_test": 2000,
            "n_reference": 100_000,
            "tsne_points": 300,
            "label_noise": [0.0, 0.0, 0.0],
            # systematic errors of those labels (sost_jax.sost.pairing.LabelErrors): Teff' =
            # teff_scale Teff + teff_offset, log g pulled by logg_pull towards logg_pivot,
            # [Fe/H] + feh_offset; e.g. LASP-like: 80 K, 0.15 towards 3.5 dex, -0.08 dex
            "label_bias": {
                "teff_offset": 0.0,
                "teff_scale": 1.0,
                "logg_pull": 0.0,
                "logg_pivot": 3.5,
                "feh_offset": 0.0,
            },
            # fraction of the observed training stars that get a partner (1: all, with the
            # labels above). Below 1 a random subset of that size stands for a
            # high-resolution overlap (APOGEE's): it is paired at accurate labels (truth
            # plus subset_label_noise, no bias) and the other stars have no partner
            "pair_fraction": 1.0,
            "subset_label_noise": [50.0, 0.05, 0.03],
            # also fit the test set continuously (infer.method=fit) with the raw and SOST
            # libraries' emulators, errors calibrated on the observed pool (sost_jax.demo.fit)
            "fit": True,
        }
    )
    # Generator (both auto-encoders) and discriminators: see sost_jax.sost.models.
    c.model = ml_collections.ConfigDict(dict(MODEL_DEFAULTS))
    c.dis = ml_collections.ConfigDict(dict(DIS_DEFAULTS))
    # Loss weights, sost-jax's defaults (GAN 1, id 10, content 1, style 1, no cycle);
    # configs/paper.py and configs/reference.py hold the paper's and the reference code's.
    # recon_weighting "mask": reconstruction L1 only over pixels with data; "none": all.
    c.loss = ml_collections.ConfigDict(
        {
            "gan": 1.0,
            "recon_x": 10.0,
            "recon_c": 1.0,
            "recon_s": 1.0,
            "cycle": 0.0,
            "paired": 0.0,  # L1 of translated synthetic partners against observed spectra
            # L1 between the translations' mean change and the mean difference between the
            # observed and synthetic training sets (label-free; assumes similar populations)
            "mean_gap": 0.0,
            # the content reconstruction's target (the source's content code) held fixed
            # (stop-gradient), as the reference code does
            "detach_content": False,
            # the observed domain's discriminator sees translations with the noise and mask
            # of observed spectra of the batch (sost_jax.sost.objectives.as_measured)
            "gan_measured": False,
            "recon_weighting": "mask",
        }
    )
    # Training: the two domains' prepared stores, Adam and its linear decay, bookkeeping.
    c.train = ml_collections.ConfigDict(
        {
            "synthetic_store": "",  # prepared store of the synthetic domain (a)
            "observed_store": "",  # prepared store of the observed domain (b)
            # synthetic spectra at the observed spectra's labels, row-aligned with the
            # observed store (`sost_jax.sost.pairing`); needed when loss.paired > 0
            "paired_store": "",
            "batch_size": 8,
            "steps": 200_000,
            "lr": 1e-4,
            "beta1": 0.5,
            "beta2": 0.999,
            "weight_decay": 1e-4,
            "decay_start": 100_000,  # lr constant until here, then linear to 0 at steps
            "seed": 0,
            "n_val": 256,  # held-out spectra per domain for validation
            "log_every": 10,
            "eval_every": 1000,
            "checkpoint_every": 1000,
            "keep_checkpoints": 3,
            "prefetch": 2,  # batches read ahead per domain
            "min_snr": 0.0,  # observed spectra used need S/N per pixel >= this (0: all)
            # what the discriminators see as fakes: "fresh" translations by the updated
            # generators, or the "same" ones as the generator step (the reference's order)
            "dis_fakes": "fresh",
            "distributed": False,  # one of several processes (sost_jax.runtime.distributed)
        }
    )
    # The Payne-style emulator of the synthetic grid (sost_jax.library.emulator.EmulatorSettings).
    c.emulator = EmulatorSettings().to_dict()
    # The template library: cells of the reference catalogue (sost_jax.library.cells.LibraryGrid)
    # and where translated spectra take their style code from (sost_jax.library.styles: "matched",
    # "prior", "fixed:v1,...", "gaussian:PATH", "mixture:PATH"); spectra per compiled call.
    # "matched" partners: among observed spectra with S/N >= match_min_snr, the one with
    # the smallest mean squared difference over its good pixels ("mask") or the smallest
    # reduced chi2 weighted by its inverse variance ("ivar", the paper's, with S/N > 30).
    c.library = ml_collections.ConfigDict(
        {
            "grid": LibraryGrid().to_dict(),
            "style": "matched",
            "match_weight": "mask",
            "match_min_snr": 0.0,
            "batch": 256,
            # the translated emulator (sost_jax.library.translated_emulator) that infer.method=fit
            # goes through: draws per kept cell it is trained on; 0 builds none
            "translated_points_per_cell": 4,
        }
    )
    # Template matching and survey inference (sost_jax.inference.estimate.InferSettings).
    c.infer = InferSettings().to_dict()
    return c


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


def emulator_settings(config: ml_collections.ConfigDict) -> EmulatorSettings:
    """The `EmulatorSettings` of a config (validated)."""
    return EmulatorSettings.from_dict(config.emulator.to_dict())


def library_grid(config: ml_collections.ConfigDict) -> LibraryGrid:
    """The `LibraryGrid` of a config (validated)."""
    return LibraryGrid.from_dict(config.library.grid.to_dict())


def infer_settings(config: ml_collections.ConfigDict) -> InferSettings:
    """The `InferSettings` of a config (validated)."""
    return InferSettings.from_dict(config.infer.to_dict())


def prepare_settings(config: ml_collections.ConfigDict) -> PrepareSettings:
    """The `PrepareSettings` of a config (validated)."""
    return PrepareSettings.from_dict(config.preprocess.to_dict())


def reader_workers(config: ml_collections.ConfigDict) -> int | None:
    """Reader processes: ``data.workers``, or None (the library's default) when negative."""
    return config.data.workers if config.data.workers >= 0 else None


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise ValueError with a clear message when the config cannot work."""
    prepare_settings(config)
    if config.data.reader not in ("auto", "lamost", "fits1d"):
        raise InputError(f"data.reader must be auto, lamost or fits1d; got {config.data.reader!r}")
    for key in ("shard_size", "chunk_size"):
        if config.data[key] < 1:
            raise InputError(f"data.{key} must be >= 1, got {config.data[key]}")
    for key in ("n_synthetic", "n_observed", "n_test", "n_reference", "tsne_points"):
        if config.demo[key] < 1:
            raise InputError(f"demo.{key} must be >= 1, got {config.demo[key]}")
    for key in ("label_noise", "subset_label_noise"):
        noise = list(config.demo[key])
        if len(noise) != 3 or any(not (v >= 0) for v in noise):
            raise InputError(f"demo.{key} must be 3 numbers >= 0 (K, dex, dex), got {noise}")
    try:
        LabelErrors.from_config(config.demo.label_noise, config.demo.label_bias.to_dict())
    except ValueError as err:
        raise InputError(f"demo.label_bias: {err}") from None
    if not 0 < config.demo.pair_fraction <= 1:
        raise InputError(f"demo.pair_fraction must be in (0, 1], got {config.demo.pair_fraction}")
    validate_mock_config(config.mock)
    emulator_settings(config)
    library_grid(config)
    infer_settings(config)
    if config.library.batch < 1:
        raise InputError(f"library.batch must be >= 1, got {config.library.batch}")
    if config.library.translated_points_per_cell < 0:
        raise InputError(
            "library.translated_points_per_cell must be >= 0, got "
            f"{config.library.translated_points_per_cell}"
        )
    style = str(config.library.style).partition(":")[0].strip().lower()
    if style not in SPEC_KINDS:
        raise InputError(
            f"library.style {config.library.style!r} is not one of "
            "matched, prior, fixed:v1,..., gaussian:PATH, mixture:PATH"
        )
    if config.library.match_weight not in ("mask", "ivar"):
        raise InputError(
            f"library.match_weight must be mask or ivar, got {config.library.match_weight!r}"
        )
    if not config.library.match_min_snr >= 0:
        raise InputError(f"library.match_min_snr must be >= 0, got {config.library.match_min_snr}")
    m, d, loss, t = config.model, config.dis, config.loss, config.train
    _one_of(m, "model", "arch", ("padded", "reference"))
    _one_of(m, "model", "init", ("kaiming", "reference"))
    _one_of(d, "dis", "init", ("normal", "reference"))
    _one_of(d, "dis", "downsample", ("avg3", "decimate"))
    _one_of(t, "train", "dis_fakes", ("fresh", "same"))
    if not 0 <= d.leaky_slope < 1:
        raise InputError(f"dis.leaky_slope must be in [0, 1), got {d.leaky_slope}")
    for section, name in ((m, "model"), (d, "dis")):
        if section.pad_mode not in ("reflect", "zero"):
            raise InputError(f"{name}.pad_mode must be reflect or zero, got {section.pad_mode!r}")
        if section.conv_impl not in ("matmul", "xla"):
            raise InputError(f"{name}.conv_impl must be matmul or xla, got {section.conv_impl!r}")
        if section.dtype not in ("float32", "bfloat16"):
            raise InputError(f"{name}.dtype must be float32 or bfloat16, got {section.dtype!r}")
    for key in ("dim", "n_down", "down_stride", "n_res", "kernel_res", "style_dim", "mlp_dim"):
        if m[key] < 1:
            raise InputError(f"model.{key} must be >= 1, got {m[key]}")
    if m.kernel_res % 2 == 0 or m.style_kernel % 2 == 0:
        raise InputError("model.kernel_res and model.style_kernel must be odd")
    for key in ("dim", "n_layers", "n_scales"):
        if d[key] < 1:
            raise InputError(f"dis.{key} must be >= 1, got {d[key]}")
    if m.translation not in ("direct", "change"):
        raise InputError(f"model.translation must be direct or change, got {m.translation!r}")
    for key in ("gan", "recon_x", "recon_c", "recon_s", "cycle", "paired", "mean_gap"):
        if loss[key] < 0:
            raise InputError(f"loss.{key} must be >= 0, got {loss[key]}")
    if loss.recon_weighting not in ("mask", "none"):
        raise InputError(f"loss.recon_weighting must be mask or none, got {loss.recon_weighting!r}")
    for key in (
        "batch_size",
        "steps",
        "log_every",
        "eval_every",
        "checkpoint_every",
        "keep_checkpoints",
        "prefetch",
    ):
        if t[key] < 1:
            raise InputError(f"train.{key} must be >= 1, got {t[key]}")
    if t.min_snr < 0:
        raise InputError(f"train.min_snr must be >= 0, got {t.min_snr}")
    if t.lr <= 0 or not 0 <= t.decay_start <= t.steps:
        raise InputError("train.lr must be > 0 and 0 <= train.decay_start <= train.steps")


def _one_of(section: ml_collections.ConfigDict, name: str, key: str, allowed: tuple) -> None:
    if section[key] not in allowed:
        raise InputError(f"{name}.{key} must be one of {', '.join(allowed)}; got {section[key]!r}")


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
        config.update(read_config_file(path))
    else:  # a config file: every key must be one the defaults know (typos are errors)
        config = read_config_file(path)
        check_known_keys(config, default_config(), f"in config file {path}")
    apply_overrides(config, overrides)
    validate(config)
    return config


__all__ = [
    "apply_overrides",
    "cpu_config",
    "shipped_config",
    "default_config",
    "emulator_settings",
    "infer_settings",
    "library_grid",
    "load_config",
    "prepare_settings",
    "reader_workers",
    "save_config",
    "validate",
]
