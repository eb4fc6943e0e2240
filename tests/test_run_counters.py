"""The sequencer's run counters, profile and watchdog against a Python model."""

import gc
import random

import pytest
from hypothesis import given, settings, strategies as st

from accel.run_counters import RunCounters
from cycle_model import check_cycles

MASK32 = (1 << 32) - 1


class CountersModel:
    def __init__(self, watchdog_cycles, depth):
        self.watchdog_cycles, self.depth = watchdog_cycles, depth
        self.cycles = self.mac_busy_cycles = self.descriptor_cycles = self.watchdog = 0
        self.profile = [0] * depth
        self.read_data = 0          # the memory's synchronous read port
        self.layer_cycles = 0

    def outputs(self, i):
        return {"cycles": self.cycles, "mac_busy_cycles": self.mac_busy_cycles,
                "layer_cycles": self.layer_cycles, "watchdog": self.watchdog}

    def step(self, i):
        self.layer_cycles = self.read_data
        self.read_data = self.profile[i["layer_sel"]]
        if i["record"] and i["pc"] < self.depth:
            self.profile[i["pc"]] = (self.descriptor_cycles + 1) & MASK32
        watchdog = int(self.descriptor_cycles >= self.watchdog_cycles - 1)
        if i["busy"]:
            self.cycles = (self.cycles + 1) & MASK32
            self.descriptor_cycles = (self.descriptor_cycles + 1) & MASK32
            if i["mac_busy"]:
                self.mac_busy_cycles = (self.mac_busy_cycles + 1) & MASK32
        self.watchdog = watchdog
        if i["clear"]:
            self.cycles = self.mac_busy_cycles = 0
        if i["clear"] or i["restart"]:
            self.descriptor_cycles = self.watchdog = 0


def random_stimulus(rng, n):
    return [{"busy": int(rng.random() < 0.9), "mac_busy": int(rng.random() < 0.5),
             "clear": int(rng.random() < 0.03), "restart": int(rng.random() < 0.08),
             "record": int(rng.random() < 0.15), "pc": rng.randrange(11),
             "layer_sel": rng.randrange(8)} for _ in range(n)]


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_run_counters_match_model(watchdog_cycles, seed):
    rng = random.Random(seed)
    depth = 8
    check_cycles(RunCounters(watchdog_cycles=watchdog_cycles, profiled_descriptors=depth),
                 CountersModel(watchdog_cycles, depth), random_stimulus(rng, 120),
                 ["cycles", "mac_busy_cycles", "layer_cycles", "watchdog"], "run_counters")


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_run_counters_parameters():
    with pytest.raises(ValueError):
        RunCounters(watchdog_cycles=0, profiled_descriptors=8)
    with pytest.raises(ValueError):
        RunCounters(watchdog_cycles=16, profiled_descriptors=6)
    gc.collect()     # the half-built units are reported unused when collected: here, not later
