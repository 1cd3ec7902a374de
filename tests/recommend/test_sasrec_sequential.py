"""The shared sequence machinery of SASRec / GRU4Rec: windows and length-bucketed batches."""

from __future__ import annotations

import numpy as np

from shoprec.recommend.sequential import length_bucketed_batches, right_aligned_windows


def test_windows_keep_the_latest_items_right_aligned_in_file_order() -> None:
    # events of two users interleaved; user 1 has more items than the window
    users = np.array([1, 0, 1, 1, 0, 1, 1])
    items = np.array([10, 5, 11, 12, 6, 13, 14])
    windows = right_aligned_windows(users, items, n_users=3, width=3)
    np.testing.assert_array_equal(windows, [[0, 6, 7], [13, 14, 15], [0, 0, 0]])  # index + 1, 0 = padding


def test_bucketed_batches_cover_every_row_once_and_group_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, size=1000)
    batches = length_bucketed_batches(lengths, 100, rng)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 10  # a random split would give ~45


def test_retained_heap_applies_on_glibc_and_memory_still_works() -> None:
    import platform

    from shoprec.recommend.heap import retained_heap

    with retained_heap() as applied:
        blocks = [np.ones(4_000_000) for _ in range(3)]  # 32 MB each: above glibc's mmap threshold
        del blocks
        assert applied == (platform.libc_ver()[0] == "glibc")
    assert np.ones(4_000_000).sum() == 4_000_000  # allocation after the defaults are restored
