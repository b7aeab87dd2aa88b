"""Allocator settings for processes that stream chunks of spectra through NumPy.

glibc hands each array above a size threshold (128 kB, growing to at most 32 MB) its own
memory map and unmaps it when freed, so every chunk's arrays are faulted in again, page by
page, zeroed by the kernel: in the reader processes of `sost_jax.prepare` this was about a
third of their time, spent as system time. Raising the thresholds keeps freed memory in
the heap for the next chunk. The peak resident memory is unchanged; memory freed below the
peak stays with the process until it ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # bytes


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed blocks below 1 GiB for reuse.

    Returns True where it applied (glibc), False elsewhere (nothing changes).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
    )
