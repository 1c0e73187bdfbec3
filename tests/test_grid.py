"""Unit tests of the window and block arithmetic (scatflow.inputs.grid): no I/O, no cluster."""

import math

import numpy as np
import pytest
from helpers import n_windows

from scatflow.errors import ConfigError
from scatflow.inputs.grid import RATE_TOLERANCE, Blocks, Grid, same_rate, whole_samples

DAY_NS = 86400 * 10**9
# The tutorial's windowing: 40 s windows, 20 s hop, at 50 Hz.
RATE, WINDOW_S, HOP_S = 50.0, 40.0, 20.0
GRID = Grid(origin_ns=1_449_187_200 * 10**9, sampling_rate=RATE, bins=int(WINDOW_S * RATE), hop=int(HOP_S * RATE))


def windows_in(span_s: float) -> int:
    return n_windows(span_s, WINDOW_S, HOP_S)


def test_durations():
    assert GRID.window_s == WINDOW_S and GRID.hop_s == HOP_S
    assert GRID.window_ns == WINDOW_S * 1e9


def test_start_times_are_exact_integers_off_the_second():
    # A grid starting 180 ms after midnight at a 20 s spacing: no rounding at any k.
    g = Grid(GRID.origin_ns + 180_000_000, RATE, GRID.bins, GRID.hop)
    k = np.array([0, 1, 4318, 10**6])
    assert g.start_ns(k).tolist() == [g.origin_ns + int(i) * 20 * 10**9 for i in k]
    expected = np.array([g.origin_ns + 40 * 10**9, g.origin_ns + 60 * 10**9]).astype("datetime64[ns]")
    np.testing.assert_array_equal(g.times(2, 4), expected)
    assert g.sample_ns(3) == g.origin_ns + 60 * 10**9


def test_sample_spans_of_windows():
    # n windows span (n - 1) hops plus one window.
    assert GRID.nsamp(0, 1) == GRID.bins
    assert GRID.nsamp(5, 15) == 9 * GRID.hop + GRID.bins
    first, end = GRID.span_ns(5, 15)
    assert first == GRID.sample_ns(5)
    assert end - first == GRID.nsamp(5, 15) * 10**9 / RATE


def test_read_span_adds_half_a_sample_each_side():
    first, end = GRID.span_ns(0, 10)
    lo, hi = GRID.read_span_ns(0, 10)
    half = 10**9 / RATE / 2
    assert (first - lo, hi - end) == (half, half)


def test_one_day_holds_the_notebook_count():
    k_lo, k_hi = GRID.windows_within(GRID.origin_ns, GRID.origin_ns + DAY_NS)
    assert (k_lo, k_hi + 1) == (0, windows_in(86400))


SAMPLE_NS = int(1e9 / RATE)


def test_a_window_ending_exactly_at_the_end_is_inside():
    end = int(GRID.start_ns(7)) + GRID.window_ns
    assert GRID.last_window_before(end) == 7
    # Ends are compared to well under a sample (float rounding of ns times is no reason to drop a window) ...
    assert GRID.last_window_before(end - 1) == 7
    # ... but a window missing its last sample is out.
    assert GRID.last_window_before(end - SAMPLE_NS) == 6
    assert GRID.last_window_before(GRID.origin_ns + GRID.window_ns - SAMPLE_NS) == -1


def test_first_window_ending_after_a_start():
    assert GRID.first_window_ending_after(GRID.origin_ns) == 0
    assert GRID.first_window_ending_after(GRID.origin_ns - DAY_NS) == 0  # never negative
    # Window 0 ends exactly at origin + 40 s: it does not end *after* that instant.
    assert GRID.first_window_ending_after(GRID.origin_ns + GRID.window_ns) == 1
    assert GRID.first_window_ending_after(GRID.origin_ns + GRID.window_ns - SAMPLE_NS) == 0


def test_a_span_shorter_than_a_window_has_none():
    k_lo, k_hi = GRID.windows_within(GRID.origin_ns, GRID.origin_ns + GRID.window_ns - SAMPLE_NS)
    assert k_hi < k_lo


def test_a_later_span_continues_the_grid():
    # The windows straddling the old end (day 1 -> day 2) belong to the second span.
    _, last_day1 = GRID.windows_within(GRID.origin_ns, GRID.origin_ns + DAY_NS)
    first_day2, last_day2 = GRID.windows_within(GRID.origin_ns + DAY_NS, GRID.origin_ns + 2 * DAY_NS)
    assert first_day2 == last_day1 + 1
    assert last_day2 + 1 == windows_in(2 * 86400)


def test_blocks_count_range_and_expected():
    chunk = int(21600 / HOP_S)  # 6-hour blocks
    blocks = Blocks(chunk, windows_in(86400))
    assert blocks.count == math.ceil(blocks.n / chunk)
    assert blocks.range(0) == (0, chunk)
    last = blocks.count - 1
    assert blocks.range(last) == (last * chunk, blocks.n)
    assert blocks.expected(last) == blocks.n - last * chunk < chunk
    assert sum(blocks.expected(b) for b in range(blocks.count)) == blocks.n


def test_blocks_of_windows_and_growth():
    blocks = Blocks(10, 25)
    assert list(blocks.of_windows(0, 24)) == [0, 1, 2]
    assert list(blocks.of_windows(19, 20)) == [1, 2]
    grown = blocks.grown(41)
    assert (grown.chunk, grown.count, grown.expected(2)) == (10, 5, 10)
    assert blocks.expected(2) == 5  # the partial block before the growth


def test_blocks_exact_multiple_has_no_partial_block():
    assert Blocks(10, 30).count == 3 and Blocks(10, 30).expected(2) == 10
    assert Blocks(10, 0).count == 0


def test_slices_merge_contiguous_blocks_up_to_a_limit():
    blocks = Blocks(10, 95)
    assert blocks.slices([0, 1, 2, 5, 9], 1000) == [slice(0, 30), slice(50, 60), slice(90, 95)]
    # A limit of 25 windows rounds down to 2 whole blocks per slice.
    assert blocks.slices([0, 1, 2, 3], 25) == [slice(0, 20), slice(20, 40)]
    # At least one block per slice, however small the limit.
    assert blocks.slices([4], 1) == [slice(40, 50)]


def test_same_rate_within_the_one_tolerance():
    assert same_rate(49.9999, 50.0)
    assert same_rate(50.0 * (1 + RATE_TOLERANCE / 2), 50.0)
    assert not same_rate(50.0 * (1 + 2 * RATE_TOLERANCE), 50.0)
    assert not same_rate(49.99, 50.0)


def test_whole_samples():
    assert whole_samples(40.0, 50.0, "window") == 2000
    assert whole_samples(0.5, 20.0, "hop") == 10
    with pytest.raises(ConfigError, match=r"^window of 40.0 s is not a whole number of samples at 49.99 Hz$"):
        whole_samples(40.0, 49.99, "window")
    with pytest.raises(ConfigError, match="hop of 0.01 s"):
        whole_samples(0.01, 50.0, "hop")  # half a sample
