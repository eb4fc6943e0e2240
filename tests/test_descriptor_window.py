"""The sequencer's descriptor address and window check against a Python model."""

from hypothesis import given, settings, strategies as st

from accel.descriptor_window import DescriptorWindow
from cycle_model import check_cycles

MASK32 = (1 << 32) - 1
STEP = 8
OUTPUTS = ["addr", "next_addr", "in_window", "next_in_window", "run_window_base", "run_window_limit"]


class WindowModel:
    def __init__(self):
        self.addr = self.next_addr = self.after_next = 0
        self.in_window = self.next_ok = 0
        self.base = self.limit = 0         # the window latched at start

    @staticmethod
    def inside(first, end, base, limit):
        return int(first >= base and end <= limit)

    def outputs(self, i):
        return {"addr": self.addr, "next_addr": self.next_addr, "in_window": self.in_window,
                "next_in_window": self.inside(self.next_addr, self.after_next, self.base, self.limit),
                "run_window_base": self.base, "run_window_limit": self.limit}

    def step(self, i):
        next_ok = self.inside(self.next_addr, self.after_next, self.base, self.limit)
        if i["start"]:
            p = i["prog_addr"]
            self.base, self.limit = i["window_base"], i["window_limit"]
            self.addr, self.in_window = p, self.inside(p, p + STEP, self.base, self.limit)
            self.next_addr, self.after_next = p + STEP, p + 2 * STEP
        elif i["advance"]:
            n = self.next_addr & MASK32
            self.addr, self.in_window = n, self.next_ok
            self.next_addr, self.after_next = n + STEP, n + 2 * STEP
        self.next_ok = next_ok


# Addresses near the window's edges and near the top of the address space, where sums carry.
addresses = st.one_of(st.integers(0, 64), st.integers(MASK32 - 40, MASK32), st.integers(0, MASK32))
cycle = st.fixed_dictionaries({
    "prog_addr": addresses, "window_base": st.integers(0, 32), "window_limit": addresses,
    "start": st.integers(0, 1), "advance": st.booleans().map(int),
})


@settings(max_examples=25, deadline=None)
@given(st.lists(cycle, min_size=1, max_size=40))
def test_descriptor_window_matches_model(stimulus):
    # start and advance never come together (IDLE and the busy states).
    for c in stimulus:
        c["advance"] &= 1 - c["start"]
    check_cycles(DescriptorWindow(), WindowModel(), stimulus,
                 OUTPUTS, "descriptor_window")


def test_descriptor_window_walks_to_the_limit():
    # Program at 64, window [64, 96): descriptors 0..3 inside, the fifth starts at the limit.
    stimulus = [dict(prog_addr=64, window_base=64, window_limit=96, start=1, advance=0)]
    stimulus += [dict(start=0, advance=0), dict(start=0, advance=0)]
    for _ in range(4):
        stimulus += [dict(start=0, advance=1), dict(start=0, advance=0)]
    check_cycles(DescriptorWindow(), WindowModel(), stimulus,
                 OUTPUTS, "descriptor_window_walk")


def test_window_written_during_a_run_is_ignored():
    # Window [64, 96) at start, then shrunk to [64, 72) and moved to [0, 8): the run keeps [64, 96),
    # so the next descriptors stay inside it; the next start takes the new window.
    stimulus = [dict(prog_addr=64, window_base=64, window_limit=96, start=1, advance=0)]
    stimulus += [dict(window_base=0, window_limit=8, start=0, advance=0) for _ in range(2)]
    for _ in range(3):
        stimulus += [dict(window_base=64, window_limit=72, start=0, advance=1),
                     dict(window_base=0, window_limit=8, start=0, advance=0)]
    stimulus += [dict(prog_addr=64, window_base=0, window_limit=8, start=1, advance=0),
                 dict(start=0, advance=0), dict(start=0, advance=0)]
    check_cycles(DescriptorWindow(), WindowModel(), stimulus, OUTPUTS, "descriptor_window_latched")
