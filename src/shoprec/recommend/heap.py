"""Keep freed memory in the process while training (glibc only; elsewhere a no-op).

Training allocates and frees the same large tensors every step (the (positions, n_items) logits
of a full softmax are ~150 MB). glibc serves such blocks with mmap and returns them on free, so
every step page-faults them in again; on a virtual machine that doubled the cost of a SASRec
step. Raising the mmap and trim thresholds for the duration of a fit lets freed blocks be reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT = 128 * 1024


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def retained_heap(limit_bytes: int = 1 << 30) -> Iterator[bool]:
    """Within the block, blocks up to `limit_bytes` come from the heap and stay there when freed.

    Yields whether the setting took effect. On exit glibc's defaults are restored and the
    retained memory is handed back to the system."""
    libc = _libc()
    applied = bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, limit_bytes)
                   and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    try:
        yield applied
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
            libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
            libc.malloc_trim(0)
