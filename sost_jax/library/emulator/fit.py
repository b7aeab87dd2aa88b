"""Training an emulator on a synthetic grid (arrays or a prepared store)."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from sost_jax.data.batches import split_validation
from sost_jax.data.store import PreparedStore
from sost_jax.errors import InputError
from sost_jax.library.emulator.model import (
    MIN_GRID_POINTS,
    Emulator,
    EmulatorSettings,
    PayneMLP,
    Scaler,
)
from sost_jax.sost.optim import standard_promotion

Array = jax.Array


def _check_inputs(
    labels: np.ndarray, flux: np.ndarray, weight: np.ndarray | None, wave: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Validate; drop rows with non-finite labels; mask non-finite flux.

    Returns labels [M, 3] f64, flux [M, P] f32, mask [M, P] f32, rows dropped, pixels masked.
    """
    labels = np.asarray(labels, np.float64)
    flux = np.asarray(flux, np.float32)
    if labels.ndim != 2 or labels.shape[1] != 3:
        raise InputError(f"params must be [N, 3] (Teff, log g, [Fe/H]); got {labels.shape}")
    if flux.ndim != 2 or flux.shape[0] != labels.shape[0]:
        raise InputError(
            f"flux must be [N, P] with N = {labels.shape[0]} grid points; got {flux.shape}"
        )
    if weight is None:
        mask = np.ones(flux.shape, np.float32)
    else:
        weight = np.asarray(weight, np.float32)
        if weight.shape != flux.shape:
            raise InputError(f"weight must have flux's shape {flux.shape}; got {weight.shape}")
        mask = (weight > 0).astype(np.float32)
    if wave is not None and np.shape(wave) != (flux.shape[1],):
        raise InputError(f"wave must be [P] with P = {flux.shape[1]}; got {np.shape(wave)}")
    keep = np.all(np.isfinite(labels), axis=1)
    n_dropped = int(np.sum(~keep))
    if n_dropped:
        warnings.warn(
            f"dropped {n_dropped} of {len(labels)} grid points with NaN or infinite labels",
            stacklevel=3,
        )
    labels, flux, mask = labels[keep], flux[keep], mask[keep]
    bad = ~np.isfinite(flux)
    n_masked = int(np.sum(bad & (mask > 0)))
    if bad.any():
        flux = np.where(bad, np.float32(0), flux)
        mask = np.where(bad, np.float32(0), mask)
    if len(labels) < MIN_GRID_POINTS:
        raise InputError(
            f"an emulator needs at least {MIN_GRID_POINTS} grid points with finite labels "
            f"(training and held out); got {len(labels)}"
        )
    if not np.any(mask.sum(axis=1) > 0):
        raise InputError("no grid point has a pixel with data (weight > 0 and finite flux)")
    return labels, flux, mask, n_dropped, n_masked


def _output_transform(
    flux: np.ndarray, mask: np.ndarray, target: str
) -> tuple[np.ndarray, np.ndarray]:
    """flux_mean, flux_scale [P] of the training rows for the chosen parametrisation."""
    p = flux.shape[1]
    if target == "flux":
        return np.zeros(p, np.float32), np.ones(p, np.float32)
    count = np.maximum(mask.sum(axis=0), 1.0)
    mean = (flux * mask).sum(axis=0) / count
    if target == "deviation":
        return mean.astype(np.float32), np.ones(p, np.float32)
    std = np.sqrt((((flux - mean[None, :]) * mask) ** 2).sum(axis=0) / count)
    floor = max(1e-3 * float(std.max()), 1e-6)
    return mean.astype(np.float32), np.maximum(std, floor).astype(np.float32)


def _masked_loss(residual: Array, mask: Array, kind: str) -> Array:
    err = jnp.abs(residual) if kind == "l1" else jnp.square(residual)
    return jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), jnp.float32(1))


def _abs_residual_stats(residual: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    values = np.abs(residual[mask > 0])
    if values.size == 0:
        return {"median": math.nan, "p95": math.nan, "max": math.nan}
    return {
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
    }


def _make_trainer(
    module: PayneMLP,
    tx: optax.GradientTransformation,
    settings: EmulatorSettings,
    n_train: int,
) -> tuple[Any, Any]:
    """(run_epochs, evaluate), both jit-compiled.

    ``run_epochs(params, opt_state, key, x, y, m, mean, scale)`` runs ``eval_every`` epochs of
    shuffled mini-batch steps; ``evaluate(params, x, y, m, mean, scale)`` gives the loss and
    the residuals [N, P] in flux units.
    """
    batch = min(settings.batch_size, n_train)
    n_batches = n_train // batch
    kind = settings.loss

    def predict(params: Any, x: Array, mean: Array, scale: Array) -> Array:
        return mean[None, :] + scale[None, :] * module.apply({"params": params}, x)

    def loss_fn(params: Any, x: Array, y: Array, m: Array, mean: Array, scale: Array) -> Array:
        return _masked_loss(predict(params, x, mean, scale) - y, m, kind)

    def step(carry: tuple, idx: Array, x: Array, y: Array, m: Array, mean: Array, scale: Array):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx], m[idx], mean, scale)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    @partial(jax.jit, donate_argnums=(0, 1))
    def run_epochs(params, opt_state, key, x, y, m, mean, scale):
        def epoch(carry, k):
            order = jax.random.permutation(k, n_train)[: n_batches * batch]
            carry, losses = jax.lax.scan(
                partial(step, x=x, y=y, m=m, mean=mean, scale=scale),
                carry,
                order.reshape(n_batches, batch),
            )
            return carry, jnp.mean(losses)

        keys = jax.random.split(key, settings.eval_every)
        (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), keys)
        return params, opt_state, losses[-1]

    @jax.jit
    def evaluate(params, x, y, m, mean, scale):
        residual = predict(params, x, mean, scale) - y
        return _masked_loss(residual, m, kind), residual

    return run_epochs, evaluate


def _device(a: np.ndarray) -> Array:
    return jnp.asarray(a, jnp.float32)


def _optimizer(settings: EmulatorSettings, n_train: int) -> optax.GradientTransformation:
    """Adam, its learning rate decayed along a cosine from ``learning_rate`` to
    ``lr_final_fraction`` of it over the steps of ``max_epochs`` epochs of ``n_train`` rows."""
    steps_per_epoch = n_train // min(settings.batch_size, n_train)
    schedule = optax.cosine_decay_schedule(
        settings.learning_rate,
        max(settings.max_epochs * steps_per_epoch, 1),
        alpha=settings.lr_final_fraction,
    )
    return standard_promotion(optax.adam(schedule))


def _early_stopped(
    run_epochs: Any,
    evaluate: Any,
    net: Any,
    opt_state: Any,
    key: Array,
    train: tuple[Array, Array, Array],
    valid: tuple[Array, Array, Array],
    transform: tuple[Array, Array],
    settings: EmulatorSettings,
    t0: float,
    progress: bool,
) -> tuple[Any, dict[str, Any], dict[str, list[float]]]:
    """Train in rounds of ``eval_every`` epochs (`_make_trainer`'s ``run_epochs``), keeping
    the parameters of the lowest held-out loss, until ``patience`` epochs bring no
    improvement (or the loss is not finite), ``max_epochs`` or ``max_minutes`` after ``t0``.

    Parameters
    ----------
    run_epochs, evaluate
        From `_make_trainer`.
    net, opt_state
        Initial network parameters and optimizer state (donated to ``run_epochs``).
    key : PRNG key
        Split once per round for the shuffling.
    train, valid : (x [N, 3], flux [N, P], mask [N, P])
        Scaled labels, flux and pixel mask of the training and held-out grid points.
    transform : (mean [P], scale [P])
        The output transform (`_output_transform`).

    Returns
    -------
    best_net
        Host copy of the parameters with the lowest held-out loss.
    stopping : dict
        ``epochs`` (run), ``best_epoch``, ``stopped_by`` ("patience", "max_epochs" or
        "max_minutes"), ``best_val_loss``.
    history : dict
        ``epoch``, ``train_loss``, ``val_loss`` of every evaluation.
    """
    best_loss, _ = evaluate(net, *valid, *transform)
    best_loss = float(best_loss)
    best_net = jax.device_get(net)
    best_epoch, epoch, stopped_by = 0, 0, "max_epochs"
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "val_loss": []}
    bar = tqdm(total=settings.max_epochs, disable=not progress, desc="emulator", unit="ep")
    while epoch < settings.max_epochs:
        key, sub = jax.random.split(key)
        net, opt_state, train_loss = run_epochs(net, opt_state, sub, *train, *transform)
        epoch += settings.eval_every
        val_loss = float(evaluate(net, *valid, *transform)[0])
        history["epoch"].append(epoch)
        history["train_loss"].append(float(train_loss))
        history["val_loss"].append(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch, best_net = val_loss, epoch, jax.device_get(net)
        bar.update(settings.eval_every)
        bar.set_postfix(val=f"{val_loss:.2e}", best=f"{best_loss:.2e}")
        if not math.isfinite(val_loss) or epoch - best_epoch >= settings.patience:
            stopped_by = "patience"
            break
        if settings.max_minutes and time.perf_counter() - t0 > 60 * settings.max_minutes:
            stopped_by = "max_minutes"
            break
    bar.close()
    stopping = {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "stopped_by": stopped_by,
        "best_val_loss": best_loss,
    }
    return best_net, stopping, history


def _residual_quality(
    evaluate: Any,
    params: Any,
    train: tuple[Array, Array, Array],
    valid: tuple[Array, Array, Array],
    transform: tuple[Array, Array],
    masks: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """The report's residual statistics of the trained emulator, in flux units, over the
    pixels with data (``masks``: training and held-out [N, P]): ``val_median_abs_residual``,
    ``val_p95_abs_residual``, ``val_max_abs_residual``, ``train_median_abs_residual``,
    ``train_p95_abs_residual``."""
    _, res_va = evaluate(params, *valid, *transform)
    _, res_tr = evaluate(params, *train, *transform)
    val = _abs_residual_stats(np.asarray(res_va), masks[1])
    fit = _abs_residual_stats(np.asarray(res_tr), masks[0])
    return {
        "val_median_abs_residual": val["median"],
        "val_p95_abs_residual": val["p95"],
        "val_max_abs_residual": val["max"],
        "train_median_abs_residual": fit["median"],
        "train_p95_abs_residual": fit["p95"],
    }


def train_emulator(
    params: np.ndarray,
    flux: np.ndarray,
    settings: EmulatorSettings | None = None,
    weight: np.ndarray | None = None,
    wave: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[Emulator, dict[str, Any]]:
    """Fit an emulator to a grid of spectra, early-stopped on held-out grid points.

    Parameters
    ----------
    params : [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex] of each grid point; rows with a NaN or infinite
        label are dropped (with a warning, counted in the report).
    flux : [N, P]
        Spectra (normalised flux), all on one wavelength grid.
    settings : EmulatorSettings, optional
        Defaults when None.
    weight : [N, P], optional
        Only its zero pattern is used: pixels with weight 0 are left out of the loss and the
        residual statistics (noiseless models need no inverse-variance weighting). Non-finite
        flux values are left out likewise.
    wave : [P], optional
        Wavelengths [Å], stored with the emulator.
    progress : bool
        Show a progress bar with the held-out loss.

    Returns
    -------
    emulator : Emulator
        With the parameters of the lowest held-out loss.
    report : dict
        n_grid, n_dropped_nan_labels, n_masked_nonfinite_pixels, n_train, n_valid,
        valid_indices (rows of the input held out), epochs (run), best_epoch, stopped_by
        ("patience", "max_epochs" or "max_minutes"), best_val_loss,
        val_median_abs_residual, val_p95_abs_residual, val_max_abs_residual,
        train_median_abs_residual, train_p95_abs_residual, minutes, history (epoch,
        train_loss, val_loss per evaluation), settings.

    Raises
    ------
    ValueError
        Shapes that disagree, or fewer than `MIN_GRID_POINTS` grid points with finite labels.
    """
    settings = EmulatorSettings() if settings is None else settings
    t0 = time.perf_counter()
    n_input = int(np.shape(params)[0]) if np.ndim(params) else 0
    kept_rows = np.flatnonzero(np.all(np.isfinite(np.asarray(params, np.float64)), axis=1))
    labels, flux, mask, n_dropped, n_masked = _check_inputs(params, flux, weight, wave)
    n = len(labels)
    n_valid = max(1, int(round(settings.valid_fraction * n)))
    train_idx, valid_idx = split_validation(n, n_valid, settings.seed)

    scaler = Scaler.fit(labels)  # the grid's span; labels carry no held-out flux
    mean, scale = _output_transform(flux[train_idx], mask[train_idx], settings.target)
    module = PayneMLP(settings.hidden, flux.shape[1], settings.activation)
    key_init, key_data = jax.random.split(jax.random.PRNGKey(settings.seed))
    x_all = scaler.scale(labels)
    train = (x_all[train_idx], _device(flux[train_idx]), _device(mask[train_idx]))
    valid = (x_all[valid_idx], _device(flux[valid_idx]), _device(mask[valid_idx]))
    transform = (_device(mean), _device(scale))

    n_train = len(train_idx)
    tx = _optimizer(settings, n_train)
    run_epochs, evaluate = _make_trainer(module, tx, settings, n_train)
    net = module.init(key_init, train[0][:1])["params"]
    best_net, stopping, history = _early_stopped(
        run_epochs,
        evaluate,
        net,
        tx.init(net),
        key_data,
        train,
        valid,
        transform,
        settings,
        t0,
        progress,
    )

    emulator = Emulator(settings, best_net, scaler, mean, scale, wave)
    masks = (mask[train_idx], mask[valid_idx])
    quality = _residual_quality(evaluate, emulator.params, train, valid, transform, masks)
    report = {
        "n_grid": n_input,
        "n_dropped_nan_labels": n_dropped,
        "n_masked_nonfinite_pixels": n_masked,
        "n_train": n_train,
        "n_valid": len(valid_idx),
        "valid_indices": [int(i) for i in kept_rows[valid_idx]],
        **stopping,
        **quality,
        "minutes": (time.perf_counter() - t0) / 60,
        "history": history,
        "settings": settings.to_dict(),
    }
    return emulator, report


def emulator_from_store(
    store_path: str | os.PathLike,
    settings: EmulatorSettings | None = None,
    progress: bool = True,
) -> tuple[Emulator, dict[str, Any]]:
    """Train an emulator on every spectrum of a prepared store (e.g. the mock ``synthetic_grid``).

    Labels come from the store (rows with NaN labels are dropped), pixels with weight 0 are
    left out of the loss, and the store's wavelength grid is kept with the emulator.

    Returns
    -------
    (Emulator, report) as `train_emulator`; the report adds ``store``.
    """
    store = PreparedStore(store_path)
    if len(store) == 0:
        raise InputError(f"{store.root}: the store holds no spectra")
    data = store.read(np.arange(len(store)))
    emulator, report = train_emulator(
        data["labels"], data["flux"], settings, data["weight"], store.wave, progress
    )
    report["store"] = str(store.root)
    return emulator, report


def load_or_train(
    out: str | os.PathLike,
    store_path: str | os.PathLike,
    settings: EmulatorSettings | None = None,
    progress: bool = True,
) -> tuple[Emulator, dict[str, Any]]:
    """The emulator saved in ``out`` when it was trained on the same store with the same
    settings (or saved without that record, by an older sost-jax); else one trained now
    (`emulator_from_store`) and saved there.

    Returns
    -------
    (Emulator, report): the report (``report.json`` in ``out``) without the per-epoch
    history (``valid_indices`` kept, so that a reloaded emulator's held-out grid points are
    known), plus ``path``.
    """
    out = Path(out).absolute()
    settings = EmulatorSettings() if settings is None else settings
    wanted = {
        "store_fingerprint": PreparedStore(store_path).fingerprint,
        "settings": settings.to_dict(),
    }
    report_path = out / "report.json"
    if (out / "emulator.json").is_file() and report_path.is_file():
        report = json.loads(report_path.read_text())
        recorded = {k: report[k] for k in wanted if k in report}
        # (an emulator saved before its store and settings were recorded is kept as it is)
        if recorded == {k: v for k, v in json.loads(json.dumps(wanted)).items() if k in recorded}:
            return Emulator.load(out), {**report, "path": str(out)}
    emulator, report = emulator_from_store(store_path, settings, progress)
    emulator.save(out, overwrite=True)
    keep = {k: v for k, v in report.items() if k != "history"}
    keep.update(wanted)
    report_path.write_text(json.dumps(keep, indent=1, default=str) + "\n")
    return emulator, {**keep, "path": str(out)}
