"""Memory for streaming chunks of spectra: allocator settings, and arrays JAX can take as is.

glibc hands each array above a size threshold (128 kB, growing to at most 32 MB) its own memory map
and unmaps it when freed, so every chunk's arrays are faulted in again, page by page, zeroed by the
kernel: in the reader processes of `sost_jax.data.prepare_files` this was about a third of their
time, spent as system time. Raising the thresholds keeps freed memory in the heap for the next
chunk. The peak resident memory is unchanged; memory freed below the peak stays with the process
until it ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

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


#: Byte alignment at which JAX's CPU backend takes a NumPy array without copying it.
ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """An uninitialised array whose data start on a 64-byte boundary.

    JAX's CPU backend uses such an array's memory in place (`jax.device_put`,
    `jax.make_array_from_process_local_data`); any other it copies first, which for a chunk
    of 2000 spectra x 4800 pixels cost about 8% of the matcher's time.
    """
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n_bytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + n_bytes].view(dtype).reshape(shape)


def is_aligned(x: np.ndarray) -> bool:
    """Whether ``x`` is C-contiguous and starts on a 64-byte boundary."""
    return x.flags.c_contiguous and x.ctypes.data % ALIGNMENT == 0
