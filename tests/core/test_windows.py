"""Window index arithmetic: every window inside one record, none crossing a boundary."""

import numpy as np
import pytest
import torch

from seqpipe.data.windows import WindowIndex, gather_windows, pad_batch


def test_windows_stay_inside_records():
    offsets, lengths = np.array([0, 10, 25]), np.array([10, 15, 4])
    idx = WindowIndex(offsets, lengths, window=4, stride=3)
    starts = idx.starts(np.arange(len(idx)))
    rec = idx.record_of(np.arange(len(idx)))
    assert len(idx) == 3 + 4 + 1
    assert np.all(starts >= offsets[rec]) and np.all(starts + 4 <= offsets[rec] + lengths[rec])
    assert starts.tolist() == [0, 3, 6, 10, 13, 16, 19, 25]


def test_out_of_range_window():
    idx = WindowIndex(np.array([0]), np.array([5]), 5, 1)
    assert len(idx) == 1
    with pytest.raises(IndexError):
        idx.starts(1)


def test_gather_and_pad():
    data = np.arange(20)
    assert gather_windows(data, np.array([2, 7]), 3).tolist() == [[2, 3, 4], [7, 8, 9]]
    padded, lengths = pad_batch([np.array([1, 2, 3]), np.array([4])])
    assert padded.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]
    assert padded.dtype == torch.int64
