"""How long a receive line has been quiet."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["LineIdleTimer"]


class LineIdleTimer(wiring.Component):
    """Flags a receive line that has been idle for ``timeout_cycles`` cycles.

    ``timed_out`` is a register written with the counter (it rises in the cycle the count reaches
    the timeout), so that the counter's comparison does not sit in front of the logic that reads
    the flag.

    Parameters
    ----------
    timeout_cycles : int
        Idle cycles before ``timed_out`` rises (at least 2).

    Members
    -------
    activity : In(1)
        A byte arrives in this cycle: the count restarts.
    timed_out : Out(1)
        No byte for ``timeout_cycles`` cycles; held until the next byte.
    """

    def __init__(self, timeout_cycles):
        if not isinstance(timeout_cycles, int) or timeout_cycles < 2:
            raise ValueError(f"timeout_cycles must be an integer >= 2, not {timeout_cycles!r}")
        self._timeout_cycles = timeout_cycles
        super().__init__({"activity": In(1), "timed_out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        idle = Signal(range(self._timeout_cycles + 1))
        with m.If(self.activity):
            m.d.sync += [idle.eq(0), self.timed_out.eq(0)]
        with m.Elif(~self.timed_out):
            m.d.sync += [idle.eq(idle + 1), self.timed_out.eq(idle == self._timeout_cycles - 1)]
        return m
