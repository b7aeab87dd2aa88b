"""Checkpoints with orbax: one manager owns saving, keep-last-N and restoring the latest.

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
