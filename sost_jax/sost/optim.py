"""Optimisers: optax transformations made safe for strict dtype promotion."""

from __future__ import annotations

from typing import Any

import jax
import optax


def standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with its ``init`` and ``update`` traced under standard dtype promotion.

    optax mixes Python floats with its int32 step count (Adam's bias correction, schedules),
    which ``jax_numpy_dtype_promotion = "strict"`` refuses; our own code passes under strict
    promotion, so only this call is wrapped, wherever a caller sets it.
    """

    def init(params: Any) -> Any:
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)
