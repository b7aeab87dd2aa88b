"""The SOST modules: parameter counts of the paper, shapes, and numerics against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sost_jax.config import load_config
from sost_jax.sost.discriminator import MultiScaleDiscriminator, _avg_pool3
from sost_jax.sost.generator import AutoEncoder
from sost_jax.sost.layers import Conv1D, ConvTranspose1D, adain
from sost_jax.sost.models import count_params

PAPER = load_config(None)


def _shapes(module, *args):
    return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args))["params"]


def test_paper_parameter_counts_match_the_reference_implementation():
    x = jnp.ones((1, 4800))
    gen = _shapes(AutoEncoder(PAPER.model), x)
    assert count_params(gen["content"]) + count_params(gen["style"]) == 3_208_456
    assert count_params(gen["decoder"]) + count_params(gen["mlp"]) == 3_776_513
    assert count_params(_shapes(MultiScaleDiscriminator(PAPER.dis), x)) == 2_072_643


@pytest.mark.parametrize("n_pixels", [4800, 4799])
def test_shapes_at_paper_settings(n_pixels):
    ae = AutoEncoder(PAPER.model)
    x = jnp.ones((2, n_pixels))
    params = _shapes(ae, x)
    content, style = jax.eval_shape(
        lambda p: ae.apply({"params": p}, x, method=AutoEncoder.encode), params
    )
    assert content.shape == (2, 1200, 256) and style.shape == (2, 8)
    out = jax.eval_shape(lambda p: ae.apply({"params": p}, x), params)
    assert out.shape == (2, n_pixels) and out.dtype == jnp.float32


def test_discriminator_scales():
    x = jnp.ones((2, 4800))
    outs = jax.eval_shape(
        lambda: MultiScaleDiscriminator(PAPER.dis).init_with_output(jax.random.PRNGKey(0), x)[0]
    )
    assert [o.shape for o in outs] == [(2, 300, 1), (2, 150, 1), (2, 75, 1)]


def test_adain_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (3, 50, 4)).astype(np.float32)
    beta, gamma = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4))
    gamma = gamma.astype(np.float32)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-5) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(adain(jnp.asarray(x), beta, gamma), want, rtol=1e-4, atol=1e-4)


def _conv_reference(x, kernel, bias, stride, pad, mode):
    """Direct loops: PyTorch's Conv1d (cross-correlation) on [B, L, C] with padding."""
    xp = np.pad(
        x, ((0, 0), (pad, pad), (0, 0)), mode="reflect" if mode == "reflect" else "constant"
    )
    k = kernel.shape[0]
    l_out = (xp.shape[1] - k) // stride + 1
    out = np.zeros((x.shape[0], l_out, kernel.shape[2]))
    for i in range(l_out):
        window = xp[:, i * stride : i * stride + k]  # [B, K, Cin]
        out[:, i] = np.einsum("bkc,kcd->bd", window, kernel)
    return out + bias


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize(
    ("kernel", "stride", "pad", "mode"), [(7, 1, 3, "reflect"), (4, 2, 1, "zero")]
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_conv_matches_direct_loops(impl, kernel, stride, pad, mode, dtype):
    x = np.random.default_rng(1).normal(size=(2, 40, 3)).astype(np.float32)
    conv = Conv1D(5, kernel, stride, pad, mode, impl=impl, dtype=dtype)
    params = conv.init(jax.random.PRNGKey(0), jnp.asarray(x))
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    got = np.asarray(conv.apply(params, jnp.asarray(x)).astype(jnp.float32))
    p = params["params"]
    want = _conv_reference(x, np.asarray(p["kernel"]), np.asarray(p["bias"]), stride, pad, mode)
    tol = 1e-4 if dtype == jnp.float32 else 5e-2
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_transposed_conv_matches_pytorch_definition():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 3)).astype(np.float32)
    conv = ConvTranspose1D(4, kernel_size=4, stride=2, padding=1)
    params = conv.init(jax.random.PRNGKey(0), jnp.asarray(x))
    got = np.asarray(conv.apply(params, jnp.asarray(x)))
    kernel = np.asarray(params["params"]["kernel"])
    full = np.zeros((2, (9 - 1) * 2 + 4, 4))
    for i in range(9):  # every input pixel scatters K taps, stride apart
        for k in range(4):
            full[:, 2 * i + k] += x[:, i] @ kernel[k]
    np.testing.assert_allclose(got, full[:, 1:-1], rtol=1e-5, atol=1e-5)
    assert got.shape == (2, 18, 4)


def test_average_pool_between_scales_uses_every_pixel():
    x = np.arange(10.0, dtype=np.float32)[None, :, None]
    got = np.asarray(_avg_pool3(jnp.asarray(x)))[0, :, 0]
    # windows (padded pixels not counted): [0,1] [1,2,3] [3,4,5] [5,6,7] [7,8,9]
    np.testing.assert_allclose(got, [0.5, 2.0, 4.0, 6.0, 8.0])
