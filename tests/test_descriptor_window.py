"""The sequencer's descriptor address and window check against a Python model."""

from hypothesis import given, settings, strategies as st

from accel.descriptor_window import DescriptorWindow
from cycle_model import check_cycles

MASK32 = (1 << 32) - 1
STEP = 8


class WindowModel:
    def __init__(self):
        self.addr = self.next_addr = self.after_next = 0
        self.in_window = self.next_ok = 0

    @staticmethod
    def inside(first, end, i):
        return int(first >= i["window_base"] and end <= i["window_limit"])

    def outputs(self, i):
        return {"addr": self.addr, "next_addr": self.next_addr, "in_window": self.in_window,
                "next_in_window": self.inside(self.next_addr, self.after_next, i)}

    def step(self, i):
        next_ok = self.inside(self.next_addr, self.after_next, i)
        if i["start"]:
            p = i["prog_addr"]
            self.addr, self.in_window = p, self.inside(p, p + STEP, i)
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
                 ["addr", "next_addr", "in_window", "next_in_window"], "descriptor_window")


def test_descriptor_window_walks_to_the_limit():
    # Program at 64, window [64, 96): descriptors 0..3 inside, the fifth starts at the limit.
    stimulus = [dict(prog_addr=64, window_base=64, window_limit=96, start=1, advance=0)]
    stimulus += [dict(start=0, advance=0), dict(start=0, advance=0)]
    for _ in range(4):
        stimulus += [dict(start=0, advance=1), dict(start=0, advance=0)]
    check_cycles(DescriptorWindow(), WindowModel(), stimulus,
                 ["addr", "next_addr", "in_window", "next_in_window"], "descriptor_window_walk")
