"""Runs killed mid-way: source that slows one function down, and a SIGKILL on a condition."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence


def slowed(target: str, seconds: float) -> str:
    """Python source that makes ``target`` ("package.module.function") sleep ``seconds``
    after each call: a run to prepend it to leaves time to be killed between two writes."""
    module, name = target.rsplit(".", 1)
    return f"""
import time as _time
import {module} as _module
_done = _module.{name}
def _slow(*args, **kwargs):
    out = _done(*args, **kwargs)
    _time.sleep({seconds})
    return out
_module.{name} = _slow
"""


def kill_when(
    procs: Sequence[subprocess.Popen], ready: Callable[[], bool], timeout: float = 240
) -> None:
    """SIGKILL every process once ``ready()`` holds, as a scheduler does at its time limit
    (or when ``timeout`` seconds have passed); fails if one ended before."""
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline:
        assert all(p.poll() is None for p in procs), "a process ended before it was killed"
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
