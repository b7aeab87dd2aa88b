"""Multi-process runs through `jax.distributed`: two processes on this machine (gloo CPU
collectives) against one process, for `sost-jax infer` and `sost-jax train`."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from fixtures_kill import kill_when, slowed

from sost_jax.data.store import PreparedStore
from sost_jax.inference.catalogue import read_catalogue
from sost_jax.library.templates import Library, write_library
from sost_jax.sost import checkpoints
from sost_jax.sost.training import create_train_state

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.py"
TIMEOUT = 240  # s per launch; a hung collective fails the test instead of the CI run

#: `sost-jax` with every part written slowly (a process to kill mid-run).
_SLOW_CLI = (
    slowed("sost_jax.inference.runner._write_part", 1.5)
    + """
import sys
from sost_jax.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_NUM_PROC")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _launch(args: list[str], n_proc: int, code: str | None = None) -> list[subprocess.Popen]:
    """``sost-jax ARGS --distributed`` in ``n_proc`` processes with one device each."""
    port = _free_port()
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "sost_jax.cli"]
    return [
        subprocess.Popen(
            [*head, *args, "--distributed", "--quiet"],
            env=_env(
                1,
                JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                JAX_NUM_PROCESSES=str(n_proc),
                JAX_PROCESS_ID=str(i),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(n_proc)
    ]


def _single(args: list[str], devices: int) -> None:
    """``sost-jax ARGS`` in one process with ``devices`` CPU devices; it must succeed."""
    run = subprocess.run(
        [sys.executable, "-m", "sost_jax.cli", *args, "--quiet"],
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]


def _wait(procs: list[subprocess.Popen]) -> None:
    """Wait for every process; one failing (or the time running out) stops the others,
    which would otherwise wait for it in a collective."""
    deadline = time.time() + TIMEOUT
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
    logs = [
        f"--- process {i} (rc {p.wait()}) ---\n{p.stdout.read()[-3000:]}"
        for i, p in enumerate(procs)
    ]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)


@pytest.fixture(scope="module")
def matching(tiny, tmp_path_factory):
    """A library of the tiny synthetic spectra; the tiny observed store as targets."""
    root = tmp_path_factory.mktemp("mp")
    grid = PreparedStore(tiny.train.synthetic_store)
    data = grid.read(np.arange(len(grid)))
    library = Library(grid.wave, data["flux"], data["labels"], {"kind": "test"})
    lib_path = write_library(root / "library.fits", library)
    out = {"library": str(lib_path), "store": tiny.train.observed_store}
    _single(_infer_args(out, root / "one"), devices=1)  # the shapes of each of two processes
    return {**out, "reference": str(root / "one" / "catalogue.fits")}


def _infer_args(matching, out: Path) -> list[str]:
    return [
        "infer",
        matching["store"],
        "--library",
        matching["library"],
        "--out",
        str(out),
        "--config",
        str(TINY),
        "--set",
        "infer.k=5",
        "--set",
        "infer.chunk_size=4",
    ]


def _assert_same_catalogue(path: Path, reference: str) -> None:
    got, want = read_catalogue(path), read_catalogue(reference)
    assert list(got) == list(want)
    for name, column in want.items():
        np.testing.assert_array_equal(got[name], column, err_msg=name)


def test_infer_over_two_processes_equals_one(matching, tmp_path):
    out = tmp_path / "two"
    _wait(_launch(_infer_args(matching, out), 2))
    _assert_same_catalogue(out / "catalogue.fits", matching["reference"])
    n_parts = len(list((out / "parts").glob("part-?????.npz")))
    assert n_parts == -(-len(PreparedStore(matching["store"])) // 4)


def test_a_killed_multi_process_run_completes_when_started_again(matching, tmp_path):
    out = tmp_path / "killed"
    procs = _launch(_infer_args(matching, out), 2, code=_SLOW_CLI)
    parts = out / "parts"
    kill_when(procs, lambda: len(list(parts.glob("part-?????.npz"))) >= 2, TIMEOUT)
    written = len(list(parts.glob("part-?????.npz")))
    n_parts = -(-len(PreparedStore(matching["store"])) // 4)
    assert 2 <= written < n_parts
    assert not (out / "catalogue.fits").exists()

    _wait(_launch(_infer_args(matching, out), 2))
    _assert_same_catalogue(out / "catalogue.fits", matching["reference"])


def _train_args(tiny, work: Path) -> list[str]:
    return [
        "train",
        "--workdir",
        str(work),
        "--synthetic",
        tiny.train.synthetic_store,
        "--observed",
        tiny.train.observed_store,
        "--config",
        str(TINY),
        "--set",
        "train.steps=3",
        "--set",
        "train.eval_every=3",
        "--set",
        "train.checkpoint_every=3",
    ]


def _params_at_init(tiny) -> dict:
    n_pixels = PreparedStore(tiny.train.synthetic_store).n_pixels
    state = create_train_state(tiny, jax.random.PRNGKey(tiny.train.seed), n_pixels)
    return {"gen_params": state.gen_params, "dis_params": state.dis_params}


def _params(tiny, work: Path) -> dict:
    step, fields, _ = checkpoints.restore_part(work, checkpoints.on_device(_params_at_init(tiny)))
    assert step == 3
    return fields


def test_two_processes_train_to_the_parameters_of_one_process_with_two_devices(tiny, tmp_path):
    _single(_train_args(tiny, tmp_path / "one"), devices=2)
    _wait(_launch(_train_args(tiny, tmp_path / "two"), 2))

    one, two = _params(tiny, tmp_path / "one"), _params(tiny, tmp_path / "two")
    start = _params_at_init(tiny)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), one, start))
    assert max(moved) > 1e-4  # the steps did change the parameters
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6),
        one,
        two,
    )
