"""The sequencer's run counters, per-descriptor profile and watchdog."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring, memory
from amaranth.lib.wiring import In, Out


__all__ = ["RunCounters"]


class RunCounters(wiring.Component):
    """Cycle counters of a run, the cycles of each descriptor, and the watchdog.

    Parameters
    ----------
    watchdog_cycles : int
        ``watchdog`` rises once the current descriptor has run this many cycles.
    profiled_descriptors : int
        Descriptors whose cycles are kept (a power of two; ``pc`` beyond it is not recorded).

    Members
    -------
    busy : In(1)
        A run is under way: the counters count.
    mac_busy : In(1)
        The MAC array accepted work in this cycle.
    clear : In(1)
        Strobe: a run starts; every counter restarts from 0.
    restart : In(1)
        Strobe: a descriptor starts; its cycle count and the watchdog restart.
    record : In(1)
        Strobe: the descriptor ``pc`` ends in this cycle; its cycles (this one included) are kept.
    pc : In(16)
        Index of the current descriptor.
    layer_sel : In(range(profiled_descriptors))
        Which descriptor's cycles ``layer_cycles`` shows.
    cycles, mac_busy_cycles : Out(32)
        Cycles of the run and cycles in which the MAC array accepted work.
    layer_cycles : Out(32)
        Cycles of descriptor ``layer_sel`` (two cycles after a change of ``layer_sel``).
    watchdog : Out(1)
        The current descriptor has run ``watchdog_cycles`` cycles (one cycle late: a registered
        comparison keeps the 32-bit compare off the paths into the sequencer's error registers).
    """

    def __init__(self, *, watchdog_cycles, profiled_descriptors):
        if not isinstance(watchdog_cycles, int) or not 1 <= watchdog_cycles < 2**32:
            raise ValueError(f"watchdog_cycles must be an integer in [1, 2**32), not {watchdog_cycles!r}")
        if (not isinstance(profiled_descriptors, int) or profiled_descriptors < 1
                or profiled_descriptors & (profiled_descriptors - 1)):
            raise ValueError(f"profiled_descriptors must be a power of two, not {profiled_descriptors!r}")
        self._watchdog_cycles = watchdog_cycles
        self._profiled_descriptors = profiled_descriptors
        super().__init__({
            "busy": In(1),
            "mac_busy": In(1),
            "clear": In(1),
            "restart": In(1),
            "record": In(1),
            "pc": In(16),
            "layer_sel": In(range(profiled_descriptors)),
            "cycles": Out(32),
            "mac_busy_cycles": Out(32),
            "layer_cycles": Out(32),
            "watchdog": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._profiled_descriptors
        descriptor_cycles = Signal(32)      # cycles spent in the current descriptor

        m.submodules.profile = profile = memory.Memory(shape=32, depth=depth, init=[])
        profile_write = profile.write_port()
        profile_read = profile.read_port()
        # layer_cycles is the read data registered (one cycle after layer_sel): the block RAM's
        # clock-to-output would otherwise reach into the CSR read multiplexer.
        m.d.sync += self.layer_cycles.eq(profile_read.data)
        m.d.comb += [
            profile_read.addr.eq(self.layer_sel),
            profile_write.addr.eq(self.pc[:len(profile_write.addr)]),
            profile_write.data.eq(descriptor_cycles + 1),
            profile_write.en.eq(self.record & (self.pc < depth)),
        ]

        with m.If(self.busy):
            m.d.sync += [
                self.cycles.eq(self.cycles + 1),
                descriptor_cycles.eq(descriptor_cycles + 1),
            ]
            with m.If(self.mac_busy):
                m.d.sync += self.mac_busy_cycles.eq(self.mac_busy_cycles + 1)
        m.d.sync += self.watchdog.eq(descriptor_cycles >= self._watchdog_cycles - 1)

        with m.If(self.clear):
            m.d.sync += [self.cycles.eq(0), self.mac_busy_cycles.eq(0)]
        with m.If(self.clear | self.restart):
            m.d.sync += [descriptor_cycles.eq(0), self.watchdog.eq(0)]
        return m
