"""The PyTorch reference of benchmarks/torch_reference.py: paper parameter counts, a train
step, and the same numbers as the Flax modules given the same weights (skips without torch)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "torch_reference.py"


def _load_reference() -> Any:
    spec = importlib.util.spec_from_file_location("sost_torch_reference", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

TINY = ref.ReferenceConfig(
    dim=4,
    n_downsample=2,
    n_res=1,
    style_dim=4,
    mlp_dim=16,
    dis_dim=4,
    dis_n_layer=2,
    dis_n_scales=2,
    pixels=64,
    batch_size=2,
)


def test_paper_parameter_counts_are_the_published_ones():
    assert ref.check_paper_param_counts() == {
        "encoders": 3_208_456,
        "decoder": 3_776_513,
        "discriminator": 2_072_643,
    }


def test_reference_shapes_at_tiny_size():
    ae, dis = ref.AutoEncoder(TINY), ref.MultiScaleDiscriminator(TINY)
    x = torch.randn(2, 1, 64)
    content, style = ae.encode(x)
    assert content.shape == (2, 16, 16) and style.shape == (2, 4)
    assert ae.decode(content, style).shape == (2, 1, 64)
    assert [o.shape for o in dis(x)] == [(2, 1, 16), (2, 1, 8)]


@pytest.mark.parametrize("cycle", [0.0, 1.0])
def test_reference_step_updates_all_networks_with_finite_losses(cycle):
    cfg = ref.ReferenceConfig(**{**vars(TINY), "recon_x_cyc_w": cycle})
    trainer = ref.ReferenceTrainer(cfg, seed=1)
    before = [p.detach().clone() for p in trainer.gen_params + trainer.dis_params]
    batch = {k: torch.from_numpy(v) for k, v in ref.make_batch(cfg).items()}
    metrics = trainer.step(**batch)
    assert all(np.isfinite(v) for v in metrics.values())
    assert (metrics["recon_cyc"] > 0) == (cycle > 0)
    after = trainer.gen_params + trainer.dis_params
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def _conv(m: Any) -> dict[str, np.ndarray]:
    """torch Conv1d (C_out, C_in, K) -> Flax Conv1D kernel [K, C_in, C_out]."""
    w = m.weight.detach().numpy()
    return {"kernel": w.transpose(2, 1, 0), "bias": m.bias.detach().numpy()}


def _conv_t(m: Any) -> dict[str, np.ndarray]:
    """torch ConvTranspose1d (C_in, C_out, K) -> Flax ConvTranspose1D [K, C_in, C_out]."""
    w = m.weight.detach().numpy()
    return {"kernel": w.transpose(2, 0, 1), "bias": m.bias.detach().numpy()}


def _dense(m: Any) -> dict[str, np.ndarray]:
    return {"kernel": m.weight.detach().numpy().T, "bias": m.bias.detach().numpy()}


def _res(block: Any) -> dict[str, Any]:
    return {"Conv1D_0": _conv(block.conv1), "Conv1D_1": _conv(block.conv2)}


def flax_autoencoder_params(ae: Any) -> dict[str, Any]:
    """The torch auto-encoder's weights in the Flax `AutoEncoder`'s parameter tree."""
    enc, sty, dec = ae.enc_content, ae.enc_style, ae.dec
    content = {"Conv1D_0": _conv(enc.first)}
    content.update({f"Conv1D_{i + 1}": _conv(m) for i, m in enumerate(enc.down)})
    content.update({f"ResBlock_{i}": _res(b) for i, b in enumerate(enc.res)})
    style = {f"Conv1D_{i}": _conv(m) for i, m in enumerate(sty.convs)}
    style[f"Conv1D_{len(sty.convs)}"] = _conv(sty.out)
    mlp = {f"Dense_{i}": _dense(m) for i, m in enumerate((dec.mlp.fc1, dec.mlp.fc2, dec.mlp.fc3))}
    decoder = {f"ResBlock_{i}": _res(b) for i, b in enumerate(dec.res)}
    for i, (up, norm) in enumerate(zip(dec.up, dec.norms, strict=True)):
        decoder[f"ConvTranspose1D_{i}"] = _conv_t(up)
        decoder[f"LayerNorm1D_{i}"] = {
            "scale": norm.gamma.detach().numpy(),
            "bias": norm.beta.detach().numpy(),
        }
    decoder["Conv1D_0"] = _conv(dec.last)
    return {"content": content, "style": style, "mlp": mlp, "decoder": decoder}


def flax_discriminator_params(dis: Any) -> dict[str, Any]:
    """The torch multi-scale discriminator's weights in the Flax parameter tree."""
    out = {}
    for s, scale in enumerate(dis.scales):
        layers = [scale.first, *scale.blocks, scale.last]
        out[f"Discriminator_{s}"] = {f"Conv1D_{i}": _conv(m) for i, m in enumerate(layers)}
    return out


def _flax_config() -> Any:
    from sost_jax.config import default_config

    config = default_config()
    m, d = config.model, config.dis
    m.dim, m.n_down, m.n_res, m.style_dim, m.mlp_dim = 4, 2, 1, 4, 16
    d.dim, d.n_layers, d.n_scales = 4, 2, 2
    return config


def test_reference_computes_the_same_as_the_flax_modules():
    jax = pytest.importorskip("jax")
    generator = pytest.importorskip("sost_jax.sost.generator")
    discriminator = pytest.importorskip("sost_jax.sost.discriminator")
    config = _flax_config()
    torch.manual_seed(0)
    ae_t, dis_t = ref.AutoEncoder(TINY), ref.MultiScaleDiscriminator(TINY)
    with torch.no_grad():
        for norm in ae_t.dec.norms:  # non-trivial affine
            norm.beta.normal_()
    x = np.random.default_rng(0).normal(1.0, 0.1, (2, 64)).astype(np.float32)
    style = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)

    # the modules broadcast biases [C] against [B, L, C]; compare numbers, not rank rules
    with jax.numpy_rank_promotion("allow"):
        modules = (generator.AutoEncoder, discriminator.MultiScaleDiscriminator)
        _compare_with_flax(jax, modules, config, ae_t, dis_t, x, style)


def _compare_with_flax(
    jax: Any,
    modules: tuple[Any, Any],
    config: Any,
    ae_t: Any,
    dis_t: Any,
    x: np.ndarray,
    style: np.ndarray,
) -> None:
    auto_encoder, multi_scale = modules  # the Flax AutoEncoder and MultiScaleDiscriminator
    ae_j = auto_encoder(config.model)
    dis_j = multi_scale(config.dis)
    ae_p = jax.tree.map(np.asarray, flax_autoencoder_params(ae_t))
    dis_p = jax.tree.map(np.asarray, flax_discriminator_params(dis_t))
    # the Flax tree must have exactly this structure and these shapes
    init_ae = ae_j.init(jax.random.PRNGKey(0), x)["params"]
    init_dis = dis_j.init(jax.random.PRNGKey(0), x)["params"]
    shapes = lambda t: jax.tree.map(np.shape, t)  # noqa: E731
    assert shapes(init_ae) == shapes(ae_p)
    assert shapes(init_dis) == shapes(dis_p)

    c_j, s_j = ae_j.apply({"params": ae_p}, x, method=auto_encoder.encode)
    y_j = ae_j.apply({"params": ae_p}, c_j, style, 64, method=auto_encoder.decode)
    d_j = dis_j.apply({"params": dis_p}, x)
    with torch.no_grad():
        xt = torch.from_numpy(x)[:, None, :]
        c_t, s_t = ae_t.encode(xt)
        y_t = ae_t.decode(c_t, torch.from_numpy(style))
        d_t = dis_t(xt)
    tol = {"rtol": 1e-4, "atol": 1e-4}
    np.testing.assert_allclose(np.asarray(c_j), c_t.numpy().transpose(0, 2, 1), **tol)
    np.testing.assert_allclose(np.asarray(s_j), s_t.numpy(), **tol)
    np.testing.assert_allclose(np.asarray(y_j), y_t.numpy()[:, 0], **tol)
    for a, b in zip(d_j, d_t, strict=True):
        np.testing.assert_allclose(np.asarray(a)[..., 0], b.numpy()[:, 0], **tol)
