"""Translation between the synthetic (a) and observed (b) domains: SOST's central operation.

A generator is one MUNIT auto-encoder per domain (`sost_jax.sost.generator.AutoEncoder`): an encoder
splits a spectrum into a content code and a style code, and the decoder of the *other*
domain, given that content and a style code of its own domain, makes the translation. Two
formulations (``model.translation``): "direct", the paper's ``dec_target(content, style)``,
and "change", ``x + change_target(content, style)`` (the translation starts as the input).

Pure functions over the generators' parameters ``gen`` (dict domain -> params), used by
training (losses, validation) and by the library alike; `Translator` is a trained
generator restored from a run (its latest checkpoint, generator parameters only).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.settings import read_config_file
from sost_jax.sost import checkpoints
from sost_jax.sost.generator import AutoEncoder
from sost_jax.sost.settings import ModelSettings

Array = jax.Array
DOMAINS = ("a", "b")  # the keys of parameter trees: a synthetic, b observed
NAMES = {"synthetic": "a", "observed": "b", "a": "a", "b": "b"}


def domain_key(name: str) -> str:
    """The parameter-tree key of a domain named "synthetic" or "observed" ("a" or "b")."""
    if name not in NAMES:
        raise InputError(f"domain must be 'synthetic' or 'observed', got {name!r}")
    return NAMES[name]


def other(domain: str) -> str:
    """The other domain's key: "b" for "a" (or "synthetic"), "a" for "b"."""
    return "b" if domain_key(domain) == "a" else "a"


def codecs(model: ConfigDict, n_pixels: int) -> tuple[Callable, Callable]:
    """``encode(params, x [B, P]) -> (content, style [B, style_dim])`` and
    ``decode(params, content, style) -> [B, P]`` of one domain's auto-encoder."""
    ae = AutoEncoder(model)

    def encode(p: Any, x: Array) -> tuple[Array, Array]:
        return ae.apply({"params": p}, x, method=AutoEncoder.encode)

    def decode(p: Any, c: Array, s: Array) -> Array:
        return ae.apply({"params": p}, c, s, n_pixels, method=AutoEncoder.decode)

    return encode, decode


def cross(gen: Any, x: Array, content: Array, style: Array, source: str, model: ConfigDict):
    """Spectra ``x`` [B, P] of domain ``source``, with content codes ``content``, into the
    other domain with ``style`` [B, style_dim] (see the module docstring): [B, P]."""
    target = other(source)
    if model.translation == "change":
        change = AutoEncoder(model).apply(
            {"params": gen[target]}, content, style, x.shape[1], method=AutoEncoder.decode_change
        )
        return x + change
    _, decode = codecs(model, x.shape[1])
    return decode(gen[target], content, style)


def translate(gen: Any, x: Array, source: str, style: Array, model: ConfigDict) -> Array:
    """Translate spectra of domain ``source`` into the other domain with the given styles.

    Parameters
    ----------
    gen : dict domain -> params
    x : [B, P] normalised flux of domain ``source``
    source : "synthetic" (or "a") or "observed" (or "b")
    style : [B, style_dim] style codes of the target domain
    model : the ``model`` config section

    Returns
    -------
    [B, P] translated spectra (float32).
    """
    source = domain_key(source)
    encode, _ = codecs(model, x.shape[1])
    content, _ = encode(gen[source], x)
    return cross(gen, x, content, style, source, model)


def reconstructions(gen: Any, x_a: Array, x_b: Array, key: Array, model: ConfigDict):
    """In-domain and cycle reconstructions of spectra of both domains.

    Parameters
    ----------
    gen : dict domain -> params
    x_a, x_b : [B, P]
        Normalised flux of synthetic (a) and observed (b) spectra.
    key : PRNG key
        For the random intermediate styles of the cycles.

    Returns
    -------
    dict of [B, P]
        ``recon_a``, ``recon_b`` (encode and decode with the spectrum's own style) and
        ``cycle_a``, ``cycle_b`` (a -> b with a random style -> back to a with the original
        style, and the same from b).
    """
    encode, decode = codecs(model, x_a.shape[1])
    out = {}
    for d, x in (("a", x_a), ("b", x_b)):
        c, s = encode(gen[d], x)
        out[f"recon_{d}"] = decode(gen[d], c, s)
        there = cross(gen, x, c, jax.random.normal(key, s.shape), d, model)
        out[f"cycle_{d}"] = translate(gen, there, other(d), s, model)
    return out


def generator_shapes(model: ConfigDict, n_pixels: int) -> dict[str, Any]:
    """Abstract parameters (ShapeDtypeStructs) of both domains' auto-encoders."""
    ae = AutoEncoder(model)
    x = jnp.ones((1, n_pixels), jnp.float32)
    one = jax.eval_shape(ae.init, jax.random.PRNGKey(0), x)["params"]
    return dict.fromkeys(DOMAINS, one)


def fingerprint(config: ConfigDict) -> str:
    """Hash of the config sections that fix the shapes of a train state (model, dis)."""
    text = json.dumps({k: getattr(config, k).to_dict() for k in ("model", "dis")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def batched(fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], batch: int) -> np.ndarray:
    """``fn(*rows)`` over the rows of ``arrays`` in batches of ``batch``, concatenated (the
    last batch is padded by repeating its final row, so that ``fn`` sees one shape).
    ``arrays`` must hold at least one row."""
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    n = arrays[0].shape[0]
    parts = []
    for lo in range(0, n, batch):
        chunks = [a[lo : lo + batch] for a in arrays]
        rows = chunks[0].shape[0]
        if rows < batch and n > batch:
            chunks = [np.concatenate([c, np.repeat(c[-1:], batch - rows, axis=0)]) for c in chunks]
        parts.append(np.asarray(fn(*chunks), np.float32)[:rows])
    return np.concatenate(parts)


class Translator:
    """A trained generator, restored from a run: synthetic -> observed translation.

    Attributes
    ----------
    config : ConfigDict
        The run's config.
    gen_params : dict domain -> params
    n_pixels, style_dim : int
    step : int
        Training step of the checkpoint.
    checkpoint : str
        Path of the checkpoint.
    config_hash : str
        First 16 hex digits of the sha256 of the run's config.json.
    batch : int
        Spectra per compiled call (inputs are split and padded to it).
    """

    def __init__(
        self,
        config: ConfigDict,
        gen_params: Any,
        n_pixels: int,
        step: int,
        checkpoint: str,
        config_hash: str,
        batch: int = 64,
    ):
        self.config = config
        self.gen_params = gen_params
        self.n_pixels = int(n_pixels)
        self.style_dim = int(config.model.style_dim)
        self.step = int(step)
        self.checkpoint = checkpoint
        self.config_hash = config_hash
        self.batch = int(batch)
        model = config.model
        encode, _ = codecs(model, self.n_pixels)
        self._translate = jax.jit(lambda gen, x, s: translate(gen, x, "a", s, model))
        self._encode = jax.jit(lambda p, x: encode(p, x)[1])

    @property
    def meta(self) -> dict[str, Any]:
        """Provenance for a library."""
        return {"checkpoint": self.checkpoint, "step": self.step, "config_hash": self.config_hash}

    def _check(self, flux: Any) -> np.ndarray:
        x = np.asarray(flux, np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_pixels:
            raise InputError(f"flux must be [N, {self.n_pixels}], got {x.shape}")
        return x

    def __call__(self, flux: Any, styles: Any) -> np.ndarray:
        """Translate synthetic spectra into the observed domain.

        Parameters
        ----------
        flux : [N, P]
            Normalised synthetic spectra.
        styles : [N, style_dim]
            Observed-domain style codes.

        Returns
        -------
        float32 [N, P]
        """
        x = self._check(flux)
        s = np.asarray(styles, np.float32)
        if s.shape != (x.shape[0], self.style_dim):
            raise InputError(f"styles must be [{x.shape[0]}, {self.style_dim}], got {s.shape}")
        if not x.shape[0]:
            return np.zeros((0, self.n_pixels), np.float32)
        return batched(
            lambda a, b: self._translate(self.gen_params, jnp.asarray(a), jnp.asarray(b)),
            (x, s),
            self.batch,
        )

    def observed_styles(self, flux: Any) -> np.ndarray:
        """Style codes float32 [N, style_dim] of observed spectra [N, P] (domain b's style
        encoder)."""
        x = self._check(flux)
        if not x.shape[0]:
            return np.zeros((0, self.style_dim), np.float32)
        return batched(
            lambda a: self._encode(self.gen_params["b"], jnp.asarray(a)), (x,), self.batch
        )


def translator_from_run(
    workdir: str | os.PathLike,
    n_pixels: int | None = None,
    step: int | None = None,
    batch: int = 64,
) -> Translator:
    """Restore a training run's generator for translation (its parameters only).

    Parameters
    ----------
    workdir : path
        A `sost_jax.sost.training.train_and_evaluate` work directory (``config.json`` and
        ``checkpoints/``).
    n_pixels : int, optional
        Spectrum length P; default that of the run's synthetic store.
    step : int, optional
        Checkpoint to restore; default the latest.
    batch : int
        Spectra per compiled call.

    Returns
    -------
    Translator
        ``translator(flux [N, P], styles [N, d]) -> [N, P]``; also
        ``translator.observed_styles(flux)``.

    Raises
    ------
    FileNotFoundError
        No config.json or no checkpoint.
    ValueError
        The checkpoint was written by a model of other shapes than the config's.
    """
    work = Path(workdir).absolute()
    config_path = work / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{work} has no config.json: not a training run")
    config = read_config_file(config_path)
    # a run saved before a model setting existed had that setting's default
    config.model = ConfigDict(ModelSettings.from_dict(config.model.to_dict()).to_dict())
    config_hash = hashlib.sha256(config_path.read_bytes()).hexdigest()[:16]
    if n_pixels is None:
        if not config.train.synthetic_store:
            raise InputError("the run names no synthetic store: give n_pixels")
        n_pixels = PreparedStore(config.train.synthetic_store).n_pixels
    expected = fingerprint(config)

    def check(record: dict[str, Any]) -> None:
        found = record.get("fingerprint")
        if found is not None and found != expected:
            raise InputError(
                f"the checkpoint belongs to another model than {config_path} describes "
                f"(fingerprint {found} vs {expected})"
            )

    like = {"gen_params": checkpoints.on_device(generator_shapes(config.model, n_pixels))}
    step, part, _ = checkpoints.restore_part(work, like, step, check)
    checkpoint = str(work / "checkpoints" / str(step))
    return Translator(config, part["gen_params"], n_pixels, step, checkpoint, config_hash, batch)
