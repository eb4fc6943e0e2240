"""The receive line's idle timer against a Python model."""

import gc
import random

import pytest
from hypothesis import given, settings, strategies as st

from accel.line_idle_timer import LineIdleTimer
from cycle_model import check_cycles


class IdleModel:
    def __init__(self, timeout):
        self.timeout, self.quiet = timeout, 0      # cycles since the last byte (from reset)

    def outputs(self, i):
        return {"timed_out": int(self.quiet >= self.timeout)}

    def step(self, i):
        self.quiet = 0 if i["activity"] else min(self.quiet + 1, self.timeout)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_line_idle_timer_matches_model(timeout, seed):
    rng = random.Random(seed)
    p = rng.choice([0.02, 0.1, 0.4])
    stimulus = [{"activity": int(rng.random() < p)} for _ in range(150)]
    check_cycles(LineIdleTimer(timeout), IdleModel(timeout), stimulus, ["timed_out"], "line_idle_timer")


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_line_idle_timer_parameters():
    with pytest.raises(ValueError):
        LineIdleTimer(1)
    gc.collect()     # the half-built units are reported unused when collected: here, not later
