"""The reference code's settings as config values: initialisation, geometry, decimation,
the detached content target, the discriminators' fakes, and the paper/reference configs."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batch as _batch

from sost_jax.config import load_config
from sost_jax.sost import losses
from sost_jax.sost.discriminator import MultiScaleDiscriminator, _decimate
from sost_jax.sost.generator import AutoEncoder, input_length, round_trip_length
from sost_jax.sost.objectives import discriminator_loss, generator_loss
from sost_jax.sost.training import create_train_state, make_train_step, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]


def _adain_scale(init: str) -> tuple[float, dict]:
    """Mean |AdaIN parameter| for N(0, 1) styles at the paper's sizes, and the parameters."""
    config = load_config(None, [f"model.init={init!r}"])
    ae = AutoEncoder(config.model)
    params = ae.init(jax.random.PRNGKey(0), jnp.ones((1, 400)))["params"]
    style = jax.random.normal(jax.random.PRNGKey(1), (64, config.model.style_dim))
    out = ae.apply({"params": params}, style, method=lambda m, s: m.mlp(s))
    return float(jnp.abs(out).mean()), params


def test_reference_initialisation_gives_small_adain_parameters():
    small, params = _adain_scale("reference")
    large, _ = _adain_scale("kaiming")
    assert large > 5 * small  # the reference's AdaIN parameters start an order smaller
    kernel = np.asarray(params["content"]["Conv1D_1"]["kernel"])
    assert kernel.std() == pytest.approx(0.02, rel=0.05)
    bias = np.asarray(params["content"]["Conv1D_1"]["bias"])
    bound = 1.0 / np.sqrt(kernel.shape[0] * kernel.shape[1])  # PyTorch's: 1/sqrt(C_in K)
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.5 * bound


def test_decimation_keeps_every_other_pixel():
    x = jnp.arange(9.0)[None, :, None]
    np.testing.assert_array_equal(_decimate(x)[0, :, 0], [0.0, 2.0, 4.0, 6.0, 8.0])
    config = load_config(ROOT / "configs" / "reference.py", ["dis.n_layers=1", "dis.dim=2"])
    dis = MultiScaleDiscriminator(config.dis)
    spectra = jax.random.normal(jax.random.PRNGKey(0), (2, 64))
    params = dis.init(jax.random.PRNGKey(1), spectra)["params"]
    odd = spectra.at[:, 1::2].add(5.0)  # the second scale never sees odd pixels
    a, b = dis.apply({"params": params}, spectra), dis.apply({"params": params}, odd)
    assert not np.allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


@pytest.mark.parametrize(
    ("n_pixels", "n_down", "arch", "want"),
    [
        (4800, 2, "reference", 4800),
        (4799, 2, "reference", 4800),
        (256, 3, "reference", 260),
        (4799, 2, "padded", 4800),
        (400, 2, "padded", 400),
    ],
)
def test_spectra_are_padded_to_a_length_that_round_trips(n_pixels, n_down, arch, want):
    assert input_length(n_pixels, n_down, 2, arch) == want
    assert round_trip_length(want, n_down, 2, arch) == want


def test_reference_geometry_returns_every_pixel(tiny):
    config = load_config(ROOT / "configs" / "reference.py", ["model.dim=4", "model.n_res=1"])
    ae = AutoEncoder(config.model)
    x = jnp.asarray(_batch(tiny)["x_a"][:, :399])
    params = ae.init(jax.random.PRNGKey(0), x)["params"]
    assert ae.apply({"params": params}, x).shape == (4, 399)


def _unpaired(tiny, **loss):
    config = load_config(None, [])
    config.update(tiny)
    for key in ("gan", "recon_x", "recon_s", "recon_c", "cycle"):
        config.loss[key] = 0.0
    config.loss.update(loss)
    return config


def test_detached_content_target_takes_no_gradient_through_the_target(tiny):
    """With loss.detach_content the content term's gradient equals that of the same loss with
    the target encoder's parameters held fixed (the reference's c_code.detach())."""
    batch = _batch(tiny)
    key = jax.random.PRNGKey(3)
    grads = {}
    for detach in (False, True):
        config = _unpaired(tiny, recon_c=1.0, detach_content=detach)
        state = create_train_state(config, jax.random.PRNGKey(0), 400)

        def total(gen, config=config, state=state):
            return generator_loss(gen, state.dis_params, batch, key, config)[0]

        grads[detach] = jax.grad(total)(state.gen_params)
    # by hand: the target content codes from frozen copies of both content encoders
    config = _unpaired(tiny, recon_c=1.0)
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    ae = AutoEncoder(config.model)
    frozen = jax.tree.map(jax.lax.stop_gradient, state.gen_params)

    def by_hand(gen):
        enc = lambda p, x: ae.apply({"params": p}, x, method=AutoEncoder.encode)  # noqa: E731
        dec = lambda p, c, s: ae.apply({"params": p}, c, s, 400, method=AutoEncoder.decode)  # noqa: E731
        c_a, s_a = enc(gen["a"], batch["x_a"])
        c_b, _ = enc(gen["b"], batch["x_b"])
        k_a, k_b = jax.random.split(key)
        rand_a, rand_b = jax.random.normal(k_a, s_a.shape), jax.random.normal(k_b, s_a.shape)
        c_a_rec, _ = enc(gen["b"], dec(gen["b"], c_a, rand_b))
        c_b_rec, _ = enc(gen["a"], dec(gen["a"], c_b, rand_a))
        target_a = enc(frozen["a"], batch["x_a"])[0]
        target_b = enc(frozen["b"], batch["x_b"])[0]
        return losses.l1(c_a_rec, target_a) + losses.l1(c_b_rec, target_b)

    want = jax.grad(by_hand)(state.gen_params)
    flat = lambda t: np.concatenate([np.ravel(v) for v in jax.tree.leaves(t)])  # noqa: E731
    np.testing.assert_allclose(flat(grads[True]), flat(want), rtol=2e-3, atol=1e-6)
    assert not np.allclose(flat(grads[False]), flat(want), rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("fakes", ["same", "fresh"])
def test_discriminators_step_on_the_generator_steps_own_fakes(tiny, fakes):
    config = _unpaired(tiny, gan=1.0, recon_x=10.0)
    config.train.dis_fakes = fakes
    state = create_train_state(config, jax.random.PRNGKey(0), 400)
    batch = _batch(tiny)
    _, k_gen, _ = jax.random.split(state.rng, 3)
    _, (_, made) = generator_loss(state.gen_params, state.dis_params, batch, k_gen, config)
    want, _ = discriminator_loss(state.dis_params, None, batch, None, config, made)
    _, metrics = make_train_step(config)(state, batch)
    same = float(metrics["dis_total"]) == pytest.approx(float(want), rel=1e-5)
    assert same == (fakes == "same")


@pytest.mark.parametrize("name", ["reference.py", "paper.py", "cpu_unpaired.py"])
def test_faithful_configs_validate_and_train(tiny, tmp_path, name):
    config = load_config(
        ROOT / "configs" / name,
        [
            "model.dim=4",
            "model.n_res=1",
            "model.mlp_dim=16",
            "model.style_dim=4",
            "dis.dim=4",
            "dis.n_layers=2",
            "dis.n_scales=2",
            "train.steps=3",
            "train.decay_start=1",
            "train.batch_size=4",
            "train.n_val=4",
            "train.eval_every=3",
            "train.checkpoint_every=3",
            "train.min_snr=20.0",  # the tiny mock has too few S/N >= 30 stars
        ],
    )
    for key in ("synthetic_store", "observed_store"):
        config.train[key] = tiny.train[key]
    assert config.loss.paired == 0.0 and config.train.weight_decay == 0.0
    if name == "cpu_unpaired.py":  # label-free: the mean-gap term, no adversarial terms
        assert config.loss.mean_gap > 0 and config.loss.gan == 0.0
        assert config.model.translation == "change" and config.model.arch == "padded"
    else:
        assert config.model.arch == "reference" and config.loss.detach_content
        assert config.loss.cycle == 1.0 and config.loss.mean_gap == 0.0
    out = train_and_evaluate(config, tmp_path / "run", progress=False)
    assert out["step"] == 3 and np.isfinite(out["val_cycle_b"])


def test_bad_faithful_settings_are_refused():
    for override, word in [
        ("model.arch='valid'", "model.arch"),
        ("model.init='xavier'", "model.init"),
        ("dis.downsample='max'", "dis.downsample"),
        ("train.dis_fakes='old'", "train.dis_fakes"),
        ("dis.leaky_slope=1.5", "dis.leaky_slope"),
        ("library.match_weight='snr'", "library.match_weight"),
    ]:
        with pytest.raises(ValueError, match=word):
            load_config(None, [override])
