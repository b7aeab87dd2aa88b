"""Training SOST: train state, the jit-compiled train step, and the loop.

The train step is one pure function ``(state, batch) -> (state, metrics)``: the generators
(both auto-encoders) take an Adam step on the MUNIT generator loss (plus, for paired SOST,
the paired term over synthetic partners of the observed spectra), then the discriminators
take one on the LSGAN loss against translations made by the updated generators (the losses:
`sost_jax.sost.objectives`). It is jit-compiled once with the batch sharded over all local
devices (``jax.sharding``, mesh axis "data") and the state replicated; multi-host runs start
``jax.distributed`` and feed each host's share of the batch. The loop
(`train_and_evaluate`) draws its batches from `sost_jax.sost.input_pipeline`, validates
with `sost_jax.sost.validation`, and checkpoints so that a run resumes exactly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
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

from sost_jax.data.batches import Position
from sost_jax.errors import InputError, SostError
from sost_jax.runtime.devices import data_mesh
from sost_jax.runtime.distributed import start_processes
from sost_jax.settings import save_config
from sost_jax.sost import checkpoints, input_pipeline, translation
from sost_jax.sost.discriminator import MultiScaleDiscriminator
from sost_jax.sost.generator import AutoEncoder
from sost_jax.sost.objectives import discriminator_loss, generator_loss
from sost_jax.sost.optim import standard_promotion
from sost_jax.sost.translation import DOMAINS
from sost_jax.sost.validation import make_validation_step, validation_residuals

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


def _resume(
    manager: Any, state: TrainState, fingerprint: str, streams: list[str], work: Path
) -> tuple[TrainState, dict[str, Position]]:
    """The latest checkpoint's train state and the positions of ``streams`` (names) in
    their batch orders, or ``state`` and the streams' starts when there is none; log lines
    written after that checkpoint are dropped.

    Raises
    ------
    InputError
        The checkpoints are of a model of another config ``fingerprint``.
    """
    restored = checkpoints.restore_latest(manager, state)
    if restored is None:
        return state, {d: Position() for d in streams}
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
    return state, positions


def _next_batch(
    iters: dict[str, Iterator[tuple[dict[str, np.ndarray], Position]]],
) -> tuple[dict[str, np.ndarray], dict[str, Position]]:
    """This process's rows of the next batch of every stream, as `train_step` takes them
    (x_a, w_a, x_b, w_b [B, P], and x_p, w_p, p, pw with a paired stream "p"), and the
    streams' positions after it."""
    got, positions = {}, {}
    for d, it in iters.items():
        got[d], positions[d] = next(it)
    local = {"x_a": got["a"]["x"], "w_a": got["a"]["w"], "x_b": got["b"]["x"], "w_b": got["b"]["w"]}
    if "p" in got:
        local.update(x_p=got["p"]["x"], w_p=got["p"]["w"], p=got["p"]["p"], pw=got["p"]["pw"])
    return local, positions


def _log_training(path: Path, bar: tqdm, step: int, values: dict[str, float], rate: float):
    """Show the losses of ``step`` on the progress bar and append them, with the steps per
    second ``rate``, to the metrics log ``path``."""
    bar.set_postfix(
        g=f"{values['gen_total']:.3f}",
        d=f"{values['dis_total']:.3f}",
        rx_b=f"{values['recon_x_b']:.4f}",
    )
    _write_jsonl(path, {"step": step, "steps_per_s": round(rate, 4), **values})


def _log_validation(path: Path, step: int, values: dict[str, float]) -> None:
    """Append the validation residuals of ``step`` to the metrics log ``path``, and log them."""
    _write_jsonl(path, {"step": step, **values})
    log.info("step %d validation %s", step, ", ".join(f"{k} {v:.4f}" for k, v in values.items()))


def _save_checkpoint(
    manager: Any, step: int, state: TrainState, fingerprint: str, positions: dict[str, Position]
) -> None:
    """Checkpoint ``state`` at ``step`` with the config ``fingerprint`` and the streams'
    ``positions`` (what a resumed run needs to continue exactly)."""
    record = {"fingerprint": fingerprint, "positions": {d: vars(p) for d, p in positions.items()}}
    checkpoints.save(manager, step, state, record)


def _summary(
    state: TrainState, n_done: int, t_loop: float, t_start: float, last_val: dict[str, float]
) -> dict[str, Any]:
    """What `train_and_evaluate` returns: the final step, steps per second of the ``n_done``
    steps since ``t_loop`` (None without any), minutes since ``t_start``, and ``last_val``."""
    elapsed = time.perf_counter() - t_loop
    return {
        "step": int(state.step),
        "steps_per_s": n_done / elapsed if elapsed > 0 and n_done else None,
        "minutes": (time.perf_counter() - t_start) / 60,
        **last_val,
    }


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
    mesh = data_mesh()
    data = input_pipeline.training_data(config, mesh)

    state = create_train_state(config, jax.random.PRNGKey(tc.seed), data.stores["a"].n_pixels)
    state = jax.device_put(state, NamedSharding(mesh, PS()))
    manager = checkpoints.make_manager(work, tc.keep_checkpoints)
    fingerprint = translation.fingerprint(config)
    state, positions = _resume(manager, state, fingerprint, list(data.streams), work)
    step_fn = make_train_step(config, mesh, input_pipeline.loss_constants(config, data))
    evaluate = make_validation_step(config, data.stores["a"].wave)
    eval_key = jax.random.PRNGKey(tc.seed + 12345)

    start = int(state.step)
    iters = {d: s.iterate(positions[d], tc.prefetch) for d, s in data.streams.items()}
    bar = tqdm(total=tc.steps, initial=start, disable=not progress, desc="train", unit="step")
    metrics_log = work / "metrics.jsonl"
    last_val: dict[str, float] = {}
    pending: list[tuple[int, dict[str, Array]]] = []
    t_loop, n_done = time.perf_counter(), 0
    try:
        for step in range(start, tc.steps):
            local, positions = _next_batch(iters)
            state, metrics = step_fn(state, device_batch(local, mesh))
            n_done, done = n_done + 1, step + 1
            bar.update(1)
            pending.append((done, metrics))  # fetched at the next log or checkpoint
            logging_now = done % tc.log_every == 0 or done == tc.steps
            if logging_now or done % tc.checkpoint_every == 0:
                values = _fetch_metrics(pending, manager.latest_step())
            if logging_now:
                rate = n_done / (time.perf_counter() - t_loop)
                _log_training(metrics_log, bar, done, values, rate)
            if done % tc.eval_every == 0 or done == tc.steps:
                chunk = tc.batch_size * 2
                last_val = validation_residuals(
                    evaluate, state.gen_params, data.validation, eval_key, chunk
                )
                _log_validation(metrics_log, done, last_val)
            if done % tc.checkpoint_every == 0 or done == tc.steps:
                _save_checkpoint(manager, done, state, fingerprint, positions)
    finally:
        bar.close()
        manager.wait_until_finished()
        for it in iters.values():
            it.close()
    return _summary(state, n_done, t_loop, t_start, last_val)
