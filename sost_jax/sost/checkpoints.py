"""Checkpoints with orbax, the one module that uses it: train states (a manager owns saving,
keep-last-N and restoring the latest; `restore_part` reads some fields, e.g. the
generators, without the optimiser states) and plain array trees (the emulator's).

A checkpoint holds the whole train state (parameters, optimizer states, step, PRNG key) and
a JSON record of everything else needed to continue exactly: the data streams' positions
and the config the run was started with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def make_manager(workdir: str | os.PathLike, keep: int) -> ocp.CheckpointManager:
    """A manager writing to ``workdir/checkpoints``, keeping the last ``keep`` steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, record: dict[str, Any]) -> None:
    """Save ``state`` (a pytree of arrays) and ``record`` (JSON data) at ``step``."""
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)
        ),
        force=True,
    )


def restore_latest(
    manager: ocp.CheckpointManager, like: Any
) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state, record) of the latest checkpoint, or None when there is none.

    ``like`` is a state of the right structure, shapes, dtypes and shardings.
    """
    step = manager.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    out = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()
        ),
    )
    return step, out["state"], dict(out["record"])


def on_device(tree: Any, device: jax.Device | None = None) -> Any:
    """``tree``'s shapes and dtypes (arrays or ShapeDtypeStructs), placed on one device
    (default the first local one): the target of a restore outside a training mesh."""
    sharding = jax.sharding.SingleDeviceSharding(device or jax.local_devices()[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)


def restore_part(
    workdir: str | os.PathLike,
    like: dict[str, Any],
    step: int | None = None,
    check: Any = None,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Some fields of a saved train state, without reading the rest (optimiser states).

    Parameters
    ----------
    workdir : path
        A training work directory (``checkpoints/`` inside).
    like : dict field -> pytree
        The fields to read (e.g. ``{"gen_params": ...}``), as abstract arrays with their
        target shardings (`on_device`).
    step : int, optional
        The checkpoint; default the latest.
    check : callable, optional
        Called with the checkpoint's JSON record before any array is read (e.g. to refuse a
        checkpoint of another model with a clear message).

    Returns
    -------
    (step, the fields, the record)

    Raises
    ------
    FileNotFoundError
        No such checkpoint.
    """
    root = Path(workdir).absolute() / "checkpoints"
    if not root.is_dir():
        raise FileNotFoundError(f"{Path(workdir)} has no checkpoints/")
    manager = ocp.CheckpointManager(root)  # read only: no create, no deletion
    try:
        step = manager.latest_step() if step is None else int(step)
        if step is None or step not in manager.all_steps():
            raise FileNotFoundError(
                f"{root} has no checkpoint" + ("" if step is None else f" at step {step}")
            )
        record = dict(
            manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]
        )
        if check is not None:
            check(record)
        restore_args = ocp.checkpoint_utils.construct_restore_args(like)
        out = manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(
                    item=like, restore_args=restore_args, partial_restore=True
                )
            ),
        )
    finally:
        manager.close()
    return step, dict(out["state"]), record


def save_arrays(path: str | os.PathLike, tree: Any) -> None:
    """Write a pytree of arrays to the new directory ``path`` (and wait until it is done)."""
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(Path(path).absolute(), tree)
        checkpointer.wait_until_finished()
    finally:
        checkpointer.close()


def load_arrays(path: str | os.PathLike, like: Any) -> Any:
    """Read a pytree written by `save_arrays`; ``like`` gives its structure, shapes, dtypes
    and target shardings (`on_device`)."""
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(Path(path).absolute(), like)
    finally:
        checkpointer.close()
