"""Start JAX's multi-process runtime (`jax.distributed`) for a run over several processes.

Every process of a run executes the same command. On SLURM, Open MPI and the other
clusters JAX detects, nothing else is needed: JAX reads the process count, the process
index and the coordinator from the scheduler's environment. Elsewhere (several processes on
one machine, or a launcher JAX does not know) each process gets three variables:

    JAX_COORDINATOR_ADDRESS  host:port of process 0 (JAX's own variable)
    JAX_NUM_PROCESSES        number of processes
    JAX_PROCESS_ID           this process's index, 0 .. JAX_NUM_PROCESSES - 1

On CPUs, cross-process collectives go through gloo (JAX's CPU collectives), so the same
code runs on a laptop, a CPU cluster and GPU nodes.
"""

from __future__ import annotations

import os

import jax

from sost_jax.errors import InputError

ENV_COUNT = "JAX_NUM_PROCESSES"
ENV_INDEX = "JAX_PROCESS_ID"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer") from None


def start_processes() -> None:
    """Join this process to the run's others (once; later calls do nothing).

    Must run before any JAX computation. Raises `InputError` when neither the environment
    variables above nor a cluster JAX detects say how many processes there are.
    """
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    count, index = _env_int(ENV_COUNT), _env_int(ENV_INDEX)
    try:
        jax.distributed.initialize(num_processes=count, process_id=index)
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"cannot start the multi-process run ({err}); outside a cluster JAX detects, "
            f"set JAX_COORDINATOR_ADDRESS, {ENV_COUNT} and {ENV_INDEX} in every process"
        ) from err
