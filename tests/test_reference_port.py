"""sost-jax under configs/reference.py reproduces the public PyTorch reference's own modules.

The fixture (`benchmarks/reference_fixture.py`, made once with torch from the reference's
``models.py``) holds inputs, outputs and the parameter entries of the reference's Encoder,
Decoder and MultiDiscriminator; the weights are regenerated from their seed
(`sost_jax.sost.reference_port.check_weights`) and ported, so no torch is needed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sost_jax.config import load_config
from sost_jax.sost.discriminator import MultiScaleDiscriminator
from sost_jax.sost.generator import AutoEncoder
from sost_jax.sost.models import count_params
from sost_jax.sost.reference_port import check_weights, discriminator_params, generator_params

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = np.load(ROOT / "tests" / "data" / "reference_fixture.npz")
REFERENCE = ROOT / "configs" / "reference.py"
TOL = dict(rtol=1e-4, atol=1e-4)


def _weights(case: str, part: str) -> dict[str, np.ndarray]:
    entries = [(n, tuple(s)) for n, s in json.loads(str(FIXTURE[f"{case}_{part}_entries"]))]
    return check_weights(entries, int(FIXTURE[f"{case}_{part}_seed"]))


def _config(case: str):
    sizes = json.loads(str(FIXTURE[f"{case}_sizes"]))
    return load_config(
        REFERENCE,
        [
            f"model.dim={sizes['dim']}",
            f"model.n_res={sizes['n_residual']}",
            f"model.n_down={sizes['n_downsample']}",
            f"model.style_dim={sizes['style_dim']}",
            "model.mlp_dim=256",
        ],
    )


def _ported(case: str):
    config = _config(case)
    x = jnp.asarray(FIXTURE[f"{case}_x"])
    ae, dis = AutoEncoder(config.model), MultiScaleDiscriminator(config.dis)
    like = ae.init(jax.random.PRNGKey(0), x)["params"]
    gen = generator_params(_weights(case, "enc"), _weights(case, "dec"), like)
    like_d = dis.init(jax.random.PRNGKey(1), x)["params"]
    return config, ae, gen, dis, discriminator_params(_weights(case, "dis"), like_d)


@pytest.mark.parametrize("case", ["n2", "n3"])
def test_generator_reproduces_the_reference(case):
    _, ae, gen, _, _ = _ported(case)
    x = jnp.asarray(FIXTURE[f"{case}_x"])
    content, style = ae.apply({"params": gen}, x, method=AutoEncoder.encode)
    np.testing.assert_allclose(content, FIXTURE[f"{case}_content"], **TOL)
    np.testing.assert_allclose(style, FIXTURE[f"{case}_style"], **TOL)
    recon = ae.apply({"params": gen}, content, style, x.shape[1], method=AutoEncoder.decode)
    np.testing.assert_allclose(recon, FIXTURE[f"{case}_recon"], **TOL)
    random = jnp.asarray(FIXTURE[f"{case}_style_random"])
    moved = ae.apply({"params": gen}, content, random, x.shape[1], method=AutoEncoder.decode)
    np.testing.assert_allclose(moved, FIXTURE[f"{case}_translated"], **TOL)
    # the translation is not the reconstruction: the check sees the style
    assert np.abs(np.asarray(moved) - np.asarray(recon)).max() > 1e-2


@pytest.mark.parametrize("case", ["n2", "n3"])
def test_discriminator_reproduces_the_reference(case):
    _, _, _, dis, params = _ported(case)
    outputs = dis.apply({"params": params}, jnp.asarray(FIXTURE[f"{case}_x"]))
    assert len(outputs) == 3
    for i, out in enumerate(outputs):
        np.testing.assert_allclose(out, FIXTURE[f"{case}_dis{i}"], **TOL)


def test_a_padded_geometry_does_not_take_reference_weights():
    config = _config("n2")
    config.model.arch = "padded"
    x = jnp.asarray(FIXTURE["n2_x"])
    like = AutoEncoder(config.model).init(jax.random.PRNGKey(0), x)["params"]
    with pytest.raises(ValueError, match="does not fit"):
        generator_params(_weights("n2", "enc"), _weights("n2", "dec"), like)


@pytest.mark.parametrize("config_file", ["reference.py", "paper.py"])
def test_paper_sizes_have_the_reference_modules_parameter_counts(config_file):
    config = load_config(ROOT / "configs" / config_file)
    x = jnp.ones((1, 4800))

    def shapes(module):
        return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))["params"]

    gen = shapes(AutoEncoder(config.model))
    assert count_params(gen["content"]) == int(FIXTURE["paper_count_content"])
    assert count_params(gen["style"]) == int(FIXTURE["paper_count_style"])
    assert count_params(gen["decoder"]) + count_params(gen["mlp"]) == int(
        FIXTURE["paper_count_decoder"]
    )
    dis = shapes(MultiScaleDiscriminator(config.dis))
    assert count_params(dis) == int(FIXTURE["paper_count_discriminator"])


def test_reference_content_code_is_256_by_1197_at_4800_pixels():
    config = load_config(REFERENCE)
    ae = AutoEncoder(config.model)
    x = jnp.ones((2, 4800))
    params = jax.eval_shape(lambda: ae.init(jax.random.PRNGKey(0), x))["params"]
    content, style = jax.eval_shape(
        lambda p: ae.apply({"params": p}, x, method=AutoEncoder.encode), params
    )
    assert content.shape == (2, 1197, 256) and style.shape == (2, 8)
    out = jax.eval_shape(lambda p: ae.apply({"params": p}, x), params)
    assert out.shape == (2, 4800)
