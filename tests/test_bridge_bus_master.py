"""The bridge's Wishbone initiator against a Python model, with random answers from the bus."""

import gc
import random

import pytest
from hypothesis import given, settings, strategies as st

from accel.bridge_bus_master import BridgeBusMaster
from cycle_model import check_cycles

MASK30 = (1 << 30) - 1


class BusMasterModel:
    def __init__(self, bus_timeout):
        self.bus_timeout = bus_timeout
        self.timer_mask = (1 << bus_timeout.bit_length()) - 1
        self.address = self.write_data = self.timer = 0

    def outputs(self, i):
        active = i["read"] or i["write"]
        return {"bus.cyc": int(active), "bus.stb": int(active), "bus.we": i["write"],
                "bus.adr": self.address, "bus.dat_w": self.write_data, "bus.sel": 0xF,
                "ack": i["bus.ack"], "err": i["bus.err"], "read_data": i["bus.dat_r"],
                "timed_out": int(self.timer == self.bus_timeout)}

    def step(self, i):
        if i["latch"]:
            self.write_data = i["write_data"]
        if i["start"]:
            self.address, self.timer = i["addr"], 0
        elif i["restart_timer"]:
            self.timer = 0
        elif i["read"] or i["write"]:
            self.timer = (self.timer + 1) & self.timer_mask
            if i["bus.ack"]:
                self.address = (self.address + 1) & MASK30
                if i["read"]:
                    self.timer = 0


def random_stimulus(rng, n):
    stimulus = []
    while len(stimulus) < n:
        # the bridge's states: one access at a time, held for a while; strobes between them
        action = rng.choice(["start", "restart_timer", "read", "write", "none"])
        for _ in range(rng.randrange(1, 10) if action in ("read", "write", "none") else 1):
            err = int(rng.random() < 0.1)
            stimulus.append({
                "start": int(action == "start"), "restart_timer": int(action == "restart_timer"),
                "read": int(action == "read"), "write": int(action == "write"),
                "addr": rng.choice([rng.randrange(16), MASK30 - rng.randrange(4)]),
                "latch": int(rng.random() < 0.2), "write_data": rng.randrange(1 << 32),
                "bus.ack": int(not err and rng.random() < 0.3), "bus.err": err,
                "bus.dat_r": rng.randrange(1 << 32),
            })
    return stimulus


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**32 - 1))
def test_bridge_bus_master_matches_model(bus_timeout, seed):
    check_cycles(BridgeBusMaster(bus_timeout=bus_timeout), BusMasterModel(bus_timeout),
                 random_stimulus(random.Random(seed), 120),
                 ["bus.cyc", "bus.stb", "bus.we", "bus.adr", "bus.dat_w", "bus.sel", "ack", "err",
                  "read_data", "timed_out"], "bridge_bus_master")


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_bridge_bus_master_parameters():
    with pytest.raises(ValueError):
        BridgeBusMaster(bus_timeout=1)
    gc.collect()     # the half-built units are reported unused when collected: here, not later
