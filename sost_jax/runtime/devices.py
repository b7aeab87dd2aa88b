"""The device mesh every sharded computation uses: one axis, "data", over the devices."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh


def data_mesh(local: bool = False) -> Mesh:
    """A 1-D mesh with axis "data" over every device of every process (training, matching
    a global batch), or over this process's devices only (``local``: each process matching
    its own share of a store)."""
    devices = jax.local_devices() if local else jax.devices()
    return Mesh(np.array(devices), ("data",))
