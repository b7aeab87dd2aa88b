"""Training SOST: train state, the jit-compiled train step, validation, and the loop.

The train step is one pure function ``(state, batch) -> (state, metrics)``: the generators
(both auto-encoders) take an Adam step on the MUNIT generator loss (plus, for paired SOST,
the paired term over synthetic partners of the observed spectra), then the discriminators
take one on the LSGAN loss against translations made by the updated generators. It is
jit-compiled once with the batch sharded over all local devices (``jax.sharding``, mesh axis
"data") and the state replicated; multi-host runs start ``jax.distributed`` and feed each
host's share of the batch.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as PS
from ml_collections import ConfigDict
from tqdm.auto import tqdm

from sost_jax.data.batches import BatchStream, Position, split_validation
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError, SostError
from sost_jax.runtime.devices import data_mesh
from sost_jax.runtime.distributed import start_processes
from sost_jax.settings import save_config
from sost_jax.sost import checkpoints, losses, translation
from sost_jax.sost.discriminator import MultiScaleDiscriminator
from sost_jax.sost.generator import AutoEncoder
from sost_jax.sost.optim import standard_promotion
from sost_jax.sost.translation import DOMAINS, codecs, cross, reconstructions, translate

log = logging.getLogger(__name__)

Array = jax.Array


class TrainingDiverged(SostError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree.

    Attributes
    ----------
    step : int32 []
    gen_params, dis_params : dict domain -> params
        Auto-encoders and discriminators of domain "a" (synthetic) and "b" (observed).
    gen_opt, dis_opt : optax states
        One optimizer state for both generators, one for both discriminators.
    rng : uint32 [2]
        PRNG key for the random styles of the next step.
    """

    step: Array
    gen_params: Any
    dis_params: Any
    gen_opt: Any
    dis_opt: Any
    rng: Array


def learning_rate(train: ConfigDict) -> optax.Schedule:
    """Constant ``lr`` until ``decay_start``, then linear to 0 at ``steps``."""
    decay = max(train.steps - train.decay_start, 1)
    return optax.join_schedules(
        [optax.constant_schedule(train.lr), optax.linear_schedule(train.lr, 0.0, decay)],
        [train.decay_start],
    )


def make_optimizer(train: ConfigDict) -> optax.GradientTransformation:
    """Adam with L2 weight decay added to the gradient (as torch.optim.Adam), decaying lr."""
    return standard_promotion(
        optax.chain(
            optax.add_decayed_weights(train.weight_decay),
            optax.scale_by_adam(b1=train.beta1, b2=train.beta2),
            optax.scale_by_learning_rate(learning_rate(train)),
        )
    )


def create_train_state(config: ConfigDict, rng: Array, n_pixels: int) -> TrainState:
    """Initialise both auto-encoders, both discriminators and their optimizers.

    Parameters
    ----------
    config : ConfigDict
        Full config (sections model, dis, train).
    rng : PRNG key
    n_pixels : int
        Spectrum length P.
    """
    ae, dis = AutoEncoder(config.model), MultiScaleDiscriminator(config.dis)
    x = jnp.ones((1, n_pixels), jnp.float32)
    keys = jax.random.split(rng, 5)
    gen = {d: ae.init(k, x)["params"] for d, k in zip(DOMAINS, keys[:2], strict=True)}
    disc = {d: dis.init(k, x)["params"] for d, k in zip(DOMAINS, keys[2:4], strict=True)}
    opt = make_optimizer(config.train)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        gen_params=gen,
        dis_params=disc,
        gen_opt=opt.init(gen),
        dis_opt=opt.init(disc),
        rng=keys[4],
    )


def as_measured(x: Array, weight: Array, key: Array) -> Array:
    """Noiseless spectra ``x`` [B, P] as the survey would record them: each gets the noise
    and the mask of another observed spectrum of the batch (``weight`` [B, P], inverse
    variance; rows paired by a random permutation), Gaussian noise of variance 1 / weight
    where it has data and flux 1 where it has none (as the stores fill masked pixels).

    The discriminator of the observed domain then compares like with like (loss.gan_measured,
    as in AmbientGAN): without it, noise is what tells a translation from an observed
    spectrum, and the generator learns to paint noise on.
    """
    k_perm, k_noise = jax.random.split(key)
    w = weight[jax.random.permutation(k_perm, weight.shape[0])]
    good = w > 0
    sigma = jnp.where(good, jax.lax.rsqrt(jnp.where(good, w, 1.0)), 0.0)
    noisy = x + sigma * jax.random.normal(k_noise, x.shape, x.dtype)
    return jnp.where(good, noisy, 1.0)


def generator_loss(
    gen: Any,
    dis: Any,
    batch: dict[str, Array],
    key: Array,
    config: ConfigDict,
    constants: dict[str, Array] | None = None,
) -> tuple[Array, tuple[dict[str, Array], dict[str, Array]]]:
    """MUNIT generator objective for one batch of each domain, with the paired term.

    Terms whose weight in ``config.loss`` is 0 are left out: the cross-domain ones (GAN,
    style, content, cycle) are not computed at all when all four are 0.

    Parameters
    ----------
    gen, dis : dict domain -> params
    batch : dict
        x_a, w_a, x_b, w_b: [B, P] normalised flux and weights of each domain; with
        ``loss.paired`` > 0 also x_p, w_p: [B, P] observed spectra that have synthetic
        partners (their own batch), and p, pw: [B, P] those partners and their weights (0
        where a star has no partner).
    key : PRNG key for the random styles drawn from the N(0, 1) prior.
    config : ConfigDict
    constants : dict, optional
        ``mean_gap`` [P] (with ``loss.mean_gap`` > 0): the observed training spectra's mean
        minus the synthetic ones' (`domain_mean`), NaN where unknown.

    Returns
    -------
    total loss, and (each term, unweighted (weights in config.loss); the translations made,
    held fixed: ``x_ba`` [B, P] observed -> synthetic and ``x_ab`` synthetic -> observed,
    empty when no cross-domain term is weighted).
    """
    disc = MultiScaleDiscriminator(config.dis)
    w = config.loss
    n_pixels = batch["x_a"].shape[1]
    enc, dec = codecs(config.model, n_pixels)
    x_a, x_b = batch["x_a"], batch["x_b"]
    m_a = batch["w_a"] if w.recon_weighting == "mask" else None
    m_b = batch["w_b"] if w.recon_weighting == "mask" else None
    c_a, s_a_own = enc(gen["a"], x_a)
    c_b, s_b_own = enc(gen["b"], x_b)
    k_a, k_b = jax.random.split(key)
    s_a = jax.random.normal(k_a, s_a_own.shape)
    s_b = jax.random.normal(k_b, s_b_own.shape)
    x_a_rec, x_b_rec = dec(gen["a"], c_a, s_a_own), dec(gen["b"], c_b, s_b_own)
    terms = {
        "recon_x_a": losses.masked_l1(x_a_rec, x_a, m_a),
        "recon_x_b": losses.masked_l1(x_b_rec, x_b, m_b),
    }
    total = w.recon_x * (terms["recon_x_a"] + terms["recon_x_b"])
    fakes: dict[str, Array] = {}
    x_ab = None
    if max(w.gan, w.recon_s, w.recon_c, w.cycle) > 0:  # the unpaired cross-domain terms
        x_ba = cross(gen, x_b, c_b, s_a, "b", config.model)
        x_ab = cross(gen, x_a, c_a, s_b, "a", config.model)
        fakes = {"x_ba": jax.lax.stop_gradient(x_ba), "x_ab": jax.lax.stop_gradient(x_ab)}
        c_b_rec, s_a_rec = enc(gen["a"], x_ba)
        c_a_rec, s_b_rec = enc(gen["b"], x_ab)

        def seen_b(x: Array) -> Array:  # what the observed domain's discriminator sees
            if not w.gan_measured:
                return x
            return as_measured(x, batch["w_b"], jax.random.fold_in(key, 7))

        # the reference holds the target content code fixed (loss.detach_content)
        hold = jax.lax.stop_gradient if w.detach_content else (lambda v: v)
        terms.update(
            recon_s_a=losses.l1(s_a_rec, s_a),
            recon_s_b=losses.l1(s_b_rec, s_b),
            recon_c_a=losses.l1(c_a_rec, hold(c_a)),
            recon_c_b=losses.l1(c_b_rec, hold(c_b)),
            gan_a=losses.lsgan_generator(disc.apply({"params": dis["a"]}, x_ba)),
            gan_b=losses.lsgan_generator(disc.apply({"params": dis["b"]}, seen_b(x_ab))),
        )
        total = (
            total
            + w.gan * (terms["gan_a"] + terms["gan_b"])
            + w.recon_s * (terms["recon_s_a"] + terms["recon_s_b"])
            + w.recon_c * (terms["recon_c_a"] + terms["recon_c_b"])
        )
        if w.cycle > 0:  # back to the source domain with the source's own style
            cycle_a = cross(gen, x_ab, c_a_rec, s_a_own, "b", config.model)
            cycle_b = cross(gen, x_ba, c_b_rec, s_b_own, "a", config.model)
            terms["cycle_a"] = losses.masked_l1(cycle_a, x_a, m_a)
            terms["cycle_b"] = losses.masked_l1(cycle_b, x_b, m_b)
            total = total + w.cycle * (terms["cycle_a"] + terms["cycle_b"])
    if w.mean_gap > 0:
        # The translations' mean change must be the mean difference between the two
        # domains' training sets (no labels: it assumes similar populations, as the GAN).
        if not constants or "mean_gap" not in constants:
            raise InputError(
                "loss.mean_gap > 0 needs the two training sets' mean difference: "
                "constants={'mean_gap': domain_mean(observed) - domain_mean(synthetic)}"
            )
        gap = constants["mean_gap"]
        if x_ab is None:
            x_ab = cross(gen, x_a, c_a, s_b, "a", config.model)
        moved = (x_ab - x_a).mean(axis=0)
        known = jnp.isfinite(gap)
        diff = jnp.where(known, jnp.abs(moved - jnp.where(known, gap, 0.0)), 0.0)
        terms["mean_gap"] = diff.sum() / jnp.maximum(known.sum(), 1).astype(diff.dtype)
        total = total + w.mean_gap * terms["mean_gap"]
    if w.paired > 0:
        # The synthetic partners (same labels) of observed spectra x_p, translated with each
        # observed spectrum's own style, must give that spectrum; rows without a partner
        # have pw = 0.
        _, s_p = enc(gen["b"], batch["x_p"])
        x_pb = translate(gen, batch["p"], "a", s_p, config.model)
        mask = jnp.where(batch["pw"] > 0, batch["w_p"], 0.0)
        terms["paired"] = losses.masked_l1(x_pb, batch["x_p"], mask)
        total = total + w.paired * terms["paired"]
    return total, (terms, fakes)


def discriminator_loss(
    dis: Any,
    gen: Any,
    batch: dict[str, Array],
    key: Array,
    config: ConfigDict,
    fakes: dict[str, Array] | None = None,
) -> tuple[Array, dict[str, Array]]:
    """LSGAN loss of both discriminators: real spectra against ``fakes`` (``x_ba``,
    ``x_ab`` [B, P], e.g. those of the generator step), or, when None, against fresh
    translations by the generators ``gen`` with random styles."""
    disc = MultiScaleDiscriminator(config.dis)
    if fakes is None:
        style_dim = config.model.style_dim
        k_a, k_b = jax.random.split(key)
        b = batch["x_a"].shape[0]
        fakes = {
            "x_ba": translate(
                gen, batch["x_b"], "b", jax.random.normal(k_a, (b, style_dim)), config.model
            ),
            "x_ab": translate(
                gen, batch["x_a"], "a", jax.random.normal(k_b, (b, style_dim)), config.model
            ),
        }
    x_ba, x_ab = jax.lax.stop_gradient(fakes["x_ba"]), jax.lax.stop_gradient(fakes["x_ab"])
    if config.loss.gan_measured:
        x_ab = as_measured(x_ab, batch["w_b"], jax.random.fold_in(key, 7))

    def d(p: Any, x: Array) -> list[Array]:
        return disc.apply({"params": p}, x)

    terms = {
        "dis_a": losses.lsgan_discriminator(d(dis["a"], batch["x_a"]), d(dis["a"], x_ba)),
        "dis_b": losses.lsgan_discriminator(d(dis["b"], batch["x_b"]), d(dis["b"], x_ab)),
    }
    return config.loss.gan * (terms["dis_a"] + terms["dis_b"]), terms


def train_step(
    state: TrainState,
    batch: dict[str, Array],
    config: ConfigDict,
    constants: dict[str, Array] | None = None,
) -> tuple[TrainState, dict[str, Array]]:
    """One generator update, then one discriminator update (a pure function; none when
    ``loss.gan`` is 0). The discriminators see the generator step's own translations
    (``train.dis_fakes`` "same", the reference's order) or fresh ones by the updated
    generators ("fresh")."""
    opt = make_optimizer(config.train)
    rng, k_gen, k_dis = jax.random.split(state.rng, 3)
    (g_total, (g_terms, fakes)), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(
        state.gen_params, state.dis_params, batch, k_gen, config, constants
    )
    updates, gen_opt = opt.update(g_grads, state.gen_opt, state.gen_params)
    gen_params = optax.apply_updates(state.gen_params, updates)
    if config.loss.gan > 0:
        same = config.train.dis_fakes == "same"
        (d_total, d_terms), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
            state.dis_params, gen_params, batch, k_dis, config, fakes if same else None
        )
        updates, dis_opt = opt.update(d_grads, state.dis_opt, state.dis_params)
        dis_params = optax.apply_updates(state.dis_params, updates)
    else:  # no adversarial term: the discriminators rest
        d_total, d_terms = jnp.zeros((), jnp.float32), {}
        dis_params, dis_opt = state.dis_params, state.dis_opt
    metrics = {"gen_total": g_total, "dis_total": d_total, **g_terms, **d_terms}
    new = TrainState(state.step + 1, gen_params, dis_params, gen_opt, dis_opt, rng)
    return new, metrics


def make_train_step(
    config: ConfigDict, mesh: Mesh | None = None, constants: dict[str, Any] | None = None
) -> Callable[[TrainState, dict[str, Array]], tuple[TrainState, dict[str, Array]]]:
    """`train_step` jit-compiled: batch sharded over ``mesh`` ("data"), state replicated,
    the input state donated; ``constants`` (arrays fixed for the run, see `generator_loss`)
    are replicated."""
    mesh = data_mesh() if mesh is None else mesh
    replicated = NamedSharding(mesh, PS())
    batch_sharding = NamedSharding(mesh, PS("data"))
    fixed = None
    if constants:
        fixed = {
            k: jax.device_put(jnp.asarray(v, jnp.float32), replicated) for k, v in constants.items()
        }
    return jax.jit(
        lambda s, b: train_step(s, b, config, fixed),
        in_shardings=(replicated, batch_sharding),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


def device_batch(local: dict[str, np.ndarray], mesh: Mesh) -> dict[str, Array]:
    """This process's rows of a batch -> global arrays sharded along "data"."""
    sharding = NamedSharding(mesh, PS("data"))
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def make_validation_step(config: ConfigDict, wave: np.ndarray) -> Callable:
    """A jitted ``evaluate(gen, x_a, w_a, x_b, w_b, key) -> dict of [B] residuals``.

    The residual is the paper's Fig. 7 statistic, mean |relative residual| over 4000-5500
    Å, for in-domain reconstruction (``recon_a``, ``recon_b``) and for the cycle a -> b -> a
    and b -> a -> b with random intermediate styles (``cycle_a``, ``cycle_b``); see
    `reconstructions`.
    """
    wave_j = jnp.asarray(wave, jnp.float32)

    @jax.jit
    def evaluate(gen: Any, x_a: Array, w_a: Array, x_b: Array, w_b: Array, key: Array):
        rec = reconstructions(gen, x_a, x_b, key, config.model)
        x, w = {"a": x_a, "b": x_b}, {"a": w_a, "b": w_b}
        return {
            name: losses.relative_residual(r, x[name[-1]], w[name[-1]], wave_j)
            for name, r in rec.items()
        }

    return evaluate


def domain_mean(store: PreparedStore, rows: np.ndarray, max_rows: int = 20_000) -> np.ndarray:
    """Per-pixel mean flux [P] of ``rows`` of a store over the spectra with data there (NaN
    where none has); at most ``max_rows`` rows, evenly spaced, are read."""
    rows = np.asarray(rows)
    if rows.size > max_rows:
        rows = rows[np.linspace(0, rows.size - 1, max_rows).astype(np.int64)]
    total = np.zeros(store.n_pixels)
    count = np.zeros(store.n_pixels)
    for lo in range(0, rows.size, 2048):
        data = store.read(rows[lo : lo + 2048])
        good = np.nan_to_num(data["weight"], nan=0.0) > 0
        total += np.where(good, data["flux"], 0.0).sum(axis=0)
        count += good.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _open_domain(path: str, name: str, n_pixels: int | None) -> PreparedStore:
    if not path:
        raise InputError(f"train.{name}_store is not set: give the prepared store of that domain")
    store = PreparedStore(path)
    if n_pixels is not None and store.n_pixels != n_pixels:
        raise InputError(
            f"{name} store {path} has {store.n_pixels} pixels, the other domain {n_pixels}"
        )
    return store


def training_rows(store: PreparedStore, min_snr: float, name: str) -> np.ndarray:
    """Rows of ``store`` to train on: all, or those with S/N >= ``min_snr`` (store meta
    ``snr``, per pixel) when ``min_snr`` > 0."""
    if min_snr <= 0:
        return np.arange(len(store))
    if "snr" not in store.meta:
        raise InputError(
            f"train.min_snr = {min_snr} but the {name} store {store.root} records no S/N "
            "(meta 'snr'); set train.min_snr=0 or prepare the store from files with S/N"
        )
    snr = np.asarray(store.meta["snr"], np.float64)
    rows = np.flatnonzero(np.nan_to_num(snr, nan=-np.inf) >= min_snr)
    if rows.size < 10:
        raise InputError(
            f"only {rows.size} of {len(store)} {name} spectra have S/N >= {min_snr} "
            "(train.min_snr): too few to train on"
        )
    return rows


def _write_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop log lines written after ``last_step`` (by a run that died before checkpointing)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))


def validation_residuals(
    evaluate: Callable, gen: Any, val: dict[str, dict[str, np.ndarray]], key: Array, chunk: int
) -> dict[str, float]:
    """Mean Fig. 7 residuals over the held-out spectra of both domains, ``chunk`` spectra
    per call. The loop passes two training batches' worth: the four reconstruction paths'
    activations at 4800 pixels need 8-14 MB per spectrum in the cpu config (XLA's memory
    analysis: 905 MB of temporaries at 64 spectra, 124 MB at 16)."""
    n = min(len(val["a"]["x"]), len(val["b"]["x"]))
    sums: dict[str, float] = {}
    for lo in range(0, n, chunk):
        sl = slice(lo, min(lo + chunk, n))
        out = evaluate(
            gen,
            val["a"]["x"][sl],
            val["a"]["w"][sl],
            val["b"]["x"][sl],
            val["b"]["w"][sl],
            jax.random.fold_in(key, lo),
        )
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(np.sum(v))
    return {f"val_{k}": v / n for k, v in sums.items()}


def _fetch_metrics(
    pending: list[tuple[int, dict[str, Array]]], last_checkpoint: int | None
) -> dict[str, float]:
    """The last step's metrics of ``pending`` ((step, metrics on device) since the last
    fetch; emptied), fetched in one transfer so that the loop does not wait on the device
    every step.

    Raises
    ------
    TrainingDiverged
        A metric of any pending step is not finite (the first such step is named).
    """
    fetched = jax.device_get([m for _, m in pending])
    for (step, _), values in zip(pending, fetched, strict=True):
        bad = sorted(k for k, v in values.items() if not np.isfinite(v))
        if bad:
            raise TrainingDiverged(
                f"non-finite loss ({', '.join(bad)}) at step {step}; the run stopped and the "
                f"last good checkpoint (step {last_checkpoint}) is kept"
            )
    pending.clear()
    return {k: float(v) for k, v in fetched[-1].items()}


def train_and_evaluate(
    config: ConfigDict, workdir: str | os.PathLike, progress: bool = True
) -> dict[str, Any]:
    """Train SOST on two prepared stores, with validation, checkpoints and resumption.

    Writes into ``workdir``: ``config.json``, ``metrics.jsonl`` (training losses every
    ``train.log_every`` steps, validation every ``train.eval_every``), and
    ``checkpoints/`` (orbax; the latest is restored automatically, so running again after
    an interruption continues exactly where the last checkpoint left off).

    Returns
    -------
    dict: final step, last validation metrics, steps per second, minutes.

    Raises
    ------
    TrainingDiverged
        A loss became NaN/inf; nothing from that step on is saved.
    """

    t_start = time.perf_counter()
    tc = config.train
    if tc.distributed:
        start_processes()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    save_config(config, work / "config.json")
    store_a = _open_domain(tc.synthetic_store, "synthetic", None)
    store_b = _open_domain(tc.observed_store, "observed", store_a.n_pixels)
    n_pixels = store_a.n_pixels
    paired = None
    if config.loss.paired > 0:
        if not tc.paired_store:
            raise InputError(
                "loss.paired > 0 needs train.paired_store: synthetic spectra at the observed "
                "spectra's labels (sost-jax pair)"
            )
        paired = _open_domain(tc.paired_store, "paired", n_pixels)

    mesh = data_mesh()
    n_proc, pid = jax.process_count(), jax.process_index()
    if tc.batch_size % len(mesh.devices.flat) or tc.batch_size % n_proc:
        raise InputError(
            f"train.batch_size {tc.batch_size} must be a multiple of the {mesh.devices.size} "
            f"devices and {n_proc} processes"
        )
    local_batch = tc.batch_size // n_proc
    streams, val = {}, {}
    for d, store in (("a", store_a), ("b", store_b)):
        if d == "b":
            rows = training_rows(store, tc.min_snr, "observed")
        else:
            rows = np.arange(len(store))  # the S/N cut is for observed spectra only
        train_idx, val_idx = split_validation(len(rows), min(tc.n_val, len(rows) // 5), tc.seed)
        train_idx, val_idx = rows[train_idx], rows[val_idx]
        seed = tc.seed * 2 + (0 if d == "a" else 1)
        streams[d] = BatchStream(store, train_idx, local_batch, seed, shard=(pid, n_proc))
        data = store.read(val_idx)
        val[d] = {"x": data["flux"], "w": data["weight"]}
    if paired is not None:  # the paired term draws its own batches from stars with partners
        has = np.concatenate([(c["weight"] > 0).any(axis=1) for _, c in paired.iter_chunks(4096)])
        rows = streams["b"].indices[has[streams["b"].indices]]
        if rows.size < max(tc.batch_size, 2):
            raise InputError(
                f"only {rows.size} observed training spectra have a synthetic partner in "
                f"{paired.root}: too few for batches of {tc.batch_size}"
            )
        streams["p"] = BatchStream(
            store_b, rows, local_batch, tc.seed * 2 + 7, shard=(pid, n_proc), partner=paired
        )

    state = create_train_state(config, jax.random.PRNGKey(tc.seed), n_pixels)
    state = jax.device_put(state, NamedSharding(mesh, PS()))
    manager = checkpoints.make_manager(work, tc.keep_checkpoints)
    fingerprint = translation.fingerprint(config)
    positions = {d: Position() for d in streams}
    restored = checkpoints.restore_latest(manager, state)
    if restored is not None:
        step0, state, record = restored
        if record.get("fingerprint") != fingerprint:
            raise InputError(
                f"{work} holds checkpoints of a different model (config fingerprint "
                f"{record.get('fingerprint')} vs {fingerprint}); use another workdir"
            )
        # a checkpoint from before the paired stream existed has no position for it
        positions = {d: Position(**record["positions"].get(d, {})) for d in streams}
        _truncate_jsonl(work / "metrics.jsonl", step0)
        log.info("resumed from the checkpoint at step %d", step0)
    constants = None
    if config.loss.mean_gap > 0:
        gap = domain_mean(store_b, streams["b"].indices) - domain_mean(
            store_a, streams["a"].indices
        )
        constants = {"mean_gap": gap}
    step_fn = make_train_step(config, mesh, constants)
    evaluate = make_validation_step(config, store_a.wave)
    eval_key = jax.random.PRNGKey(tc.seed + 12345)

    start = int(state.step)
    iters = {d: streams[d].iterate(positions[d], tc.prefetch) for d in streams}
    bar = tqdm(total=tc.steps, initial=start, disable=not progress, desc="train", unit="step")
    last_val: dict[str, float] = {}
    pending: list[tuple[int, dict[str, Array]]] = []
    t_loop, n_done = time.perf_counter(), 0
    try:
        for step in range(start, tc.steps):
            got = {}
            for d, it in iters.items():
                got[d], positions[d] = next(it)
            local = {
                "x_a": got["a"]["x"],
                "w_a": got["a"]["w"],
                "x_b": got["b"]["x"],
                "w_b": got["b"]["w"],
            }
            if "p" in got:
                local.update(
                    x_p=got["p"]["x"], w_p=got["p"]["w"], p=got["p"]["p"], pw=got["p"]["pw"]
                )
            state, metrics = step_fn(state, device_batch(local, mesh))
            n_done += 1
            done = step + 1
            bar.update(1)
            pending.append((done, metrics))  # fetched at the next log or checkpoint
            logging_now = done % tc.log_every == 0 or done == tc.steps
            if logging_now or done % tc.checkpoint_every == 0:
                values = _fetch_metrics(pending, manager.latest_step())
            if logging_now:
                bar.set_postfix(
                    g=f"{values['gen_total']:.3f}",
                    d=f"{values['dis_total']:.3f}",
                    rx_b=f"{values['recon_x_b']:.4f}",
                )
                rate = n_done / (time.perf_counter() - t_loop)
                _write_jsonl(
                    work / "metrics.jsonl", {"step": done, "steps_per_s": round(rate, 4), **values}
                )
            if done % tc.eval_every == 0 or done == tc.steps:
                last_val = validation_residuals(
                    evaluate, state.gen_params, val, eval_key, tc.batch_size * 2
                )
                _write_jsonl(work / "metrics.jsonl", {"step": done, **last_val})
                log.info(
                    "step %d validation %s",
                    done,
                    ", ".join(f"{k} {v:.4f}" for k, v in last_val.items()),
                )
            if done % tc.checkpoint_every == 0 or done == tc.steps:
                record = {
                    "fingerprint": fingerprint,
                    "positions": {d: vars(p) for d, p in positions.items()},
                }
                checkpoints.save(manager, done, state, record)
    finally:
        bar.close()
        manager.wait_until_finished()
        for it in iters.values():
            it.close()
    elapsed = time.perf_counter() - t_loop
    return {
        "step": int(state.step),
        "steps_per_s": n_done / elapsed if elapsed > 0 and n_done else None,
        "minutes": (time.perf_counter() - t_start) / 60,
        **last_val,
    }
