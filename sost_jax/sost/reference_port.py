"""Weights of the public PyTorch reference (github zeyangyan/SOST) as sost-jax parameters.

The reference saves each network as a PyTorch ``state_dict`` (``Enc1_260.pth``,
``Dec1_260.pth``, ``D1_260.pth``, ...). Loaded with torch and turned into NumPy arrays,
they map onto the Flax modules of `sost_jax.sost.models` under ``configs/reference.py``
(``model.arch = "reference"``)::

    import torch
    enc = {k: v.numpy() for k, v in torch.load("Enc2_260.pth", map_location="cpu").items()}
    dec = {k: v.numpy() for k, v in torch.load("Dec2_260.pth", map_location="cpu").items()}
    params = generator_params(enc, dec, like=our_initialised_params)

Both sides list their parameters in the order the forward pass uses them (PyTorch by module
registration, Flax by creation), so the mapping walks both in order and checks every shape;
layouts are converted (Conv1d (out, in, K) and ConvTranspose1d (in, out, K) -> [K, in,
out]; Linear (out, in) -> [in, out]). Buffers (the AdaIN layers' unused running
statistics) are skipped. `tests/test_reference_port.py` checks that the ported network
reproduces the reference's outputs (`benchmarks/reference_fixture.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from sost_jax.errors import InputError

#: State-dict entries that are buffers, not parameters.
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _leaves(tree: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of a parameter dict's leaves in insertion (creation) order."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key)


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _to_ours(weight: np.ndarray, path: tuple[str, ...]) -> np.ndarray:
    """A PyTorch tensor in the layout of the Flax leaf at ``path``."""
    module, leaf = path[-2], path[-1]
    if leaf != "kernel":
        return weight
    if module.startswith("ConvTranspose1D"):
        return weight.transpose(2, 0, 1)
    if module.startswith("Conv1D"):
        return weight.transpose(2, 1, 0)
    if module.startswith("Dense"):
        return weight.T
    raise InputError(f"no layout rule for the kernel of {'/'.join(path)}")


def _copy_in_order(
    state: Mapping[str, Any], prefix: str, like: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The ``like`` subtree filled with the ``prefix``-ed entries of ``state``, in order."""
    entries = [
        (name, np.asarray(value, np.float32))
        for name, value in state.items()
        if name.startswith(prefix) and not name.endswith(_BUFFERS)
    ]
    paths = list(_leaves(like))
    if len(entries) != len(paths):
        raise InputError(
            f"{where}: the reference has {len(entries)} parameters under {prefix!r}, the Flax "
            f"module {len(paths)}; is the config the reference's (configs/reference.py) at "
            "the same sizes?"
        )
    out = _tree_copy(like)
    for (name, weight), path in zip(entries, paths, strict=True):
        value = _to_ours(weight, path)
        want = np.shape(_get(like, path))
        if value.shape != want:
            raise InputError(f"{where}: {name} {weight.shape} does not fit {'/'.join(path)} {want}")
        _set(out, path, value)
    return out


def _tree_copy(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _tree_copy(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def generator_params(
    encoder: Mapping[str, Any], decoder: Mapping[str, Any], like: Mapping[str, Any]
) -> dict[str, Any]:
    """One domain's auto-encoder parameters from the reference's Encoder and Decoder.

    Parameters
    ----------
    encoder, decoder : mapping name -> array
        The reference's ``Encoder`` and ``Decoder`` state dicts as NumPy arrays.
    like : dict
        Parameters of `sost_jax.sost.generator.AutoEncoder` under the same sizes (``content``,
        ``style``, ``mlp``, ``decoder``); gives the structure and shapes.

    Returns
    -------
    dict with the reference's weights in ``like``'s structure.

    Raises
    ------
    ValueError
        Counts or shapes that do not match (another geometry or size).
    """
    return {
        "content": _copy_in_order(encoder, "content_encoder.", like["content"], "content"),
        "style": _copy_in_order(encoder, "style_encoder.", like["style"], "style"),
        "mlp": _copy_in_order(decoder, "mlp.", like["mlp"], "mlp"),
        "decoder": _copy_in_order(decoder, "model.", like["decoder"], "decoder"),
    }


def discriminator_params(dis: Mapping[str, Any], like: Mapping[str, Any]) -> dict[str, Any]:
    """A multi-scale discriminator's parameters from the reference's ``MultiDiscriminator``
    state dict (``like``: `sost_jax.sost.discriminator.MultiScaleDiscriminator` parameters)."""
    return _copy_in_order(dis, "models.", like, "discriminator")


def check_weights(entries: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, np.ndarray]:
    """Deterministic test weights for a state dict's parameter entries (name, shape).

    Weights N(0, 1/fan_in) (fan_in: all axes but the first), biases N(0, 0.1^2), LayerNorm
    scales U(0.5, 1.5) and shifts N(0, 0.1^2), drawn in the order given: activations stay of
    order 1 through any depth, so outputs compared to 1e-4 are a strict check. Used by
    `benchmarks/reference_fixture.py` to load the reference and by the test to load ours.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in entries:
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("bias", "beta"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        out[name] = value.astype(np.float32)
    return out
