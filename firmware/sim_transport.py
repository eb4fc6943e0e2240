"""A ``Transport`` over Amaranth's Python simulator (pysim).

``PySimTransport`` puts a component with a ``host`` Wishbone target port and an ``irq`` output (the
SoC, ``accel.soc.SoC``, or any stand-in) into one ``amaranth.sim.Simulator`` and keeps it alive for
the transport's lifetime. One testbench coroutine, the *bus server*, owns the host port and serves a
queue of operations; the transport's async methods append an operation and call
``Simulator.advance()`` until the server has completed it. Simulated time therefore only moves while a
request is being served, and the cycle-level behaviour of the host port is fixed (the compiled
simulator, ``firmware/cxxrtl_sim.py``, reproduces it exactly, so both report the same cycle counts):

- every operation begins with one idle cycle (``cyc`` low);
- a word transfer drives ``cyc stb we adr dat_w sel=0xF`` and clocks until ``ack`` or ``err`` is
  seen high before a rising edge; that edge ends the transfer, ``cyc``/``stb`` drop, and the next
  word of the same operation follows after one idle cycle;
- ``wait_irq(n)`` looks at ``irq`` before each rising edge and clocks at most ``n`` edges.

Back door: when the DUT exposes its main memory as a ``MemoryData`` attribute ``mem`` (as
``accel.soc.SoC`` does; ``mem_data`` is also accepted; word 0 of the bus = row 0), ``write_words``/``read_words`` wholly inside ``[0, len(mem_data))`` set or get the
rows directly instead of running bus cycles (a 16k-word memory image would otherwise take ~50k
simulated cycles). Pass ``backdoor=False`` to force bus transfers (the cross-check with the compiled
simulator does, so that cycle counts match).

With ``resettable=True`` the design's ``sync`` domain gets a reset that ``reset_after(n)`` asserts
for one cycle ``n`` cycles later, whatever the host is doing then: the reset button of a board
pressed in the middle of a run or a transfer. Registers restart, memories keep their contents, as
on an FPGA. (Off by default: the reset process costs simulation time in every cycle.)

With the environment variable ``PEA_VCD=1`` a VCD of the whole session is written to
``build/vcd/pysim_transport.vcd`` (in the repository; closed by ``close()``).
"""

import collections
import os
from pathlib import Path

from amaranth.hdl import ClockDomain, MemoryData, Module
from amaranth.sim import Simulator

from .transport import Transport, resolve_dut, TransportError


__all__ = ["PySimTransport"]


_READ, _WRITE, _PEEK, _POKE, _WAIT_IRQ = range(5)


class _Op:
    __slots__ = ("kind", "addr", "data", "count", "done", "result", "error")

    def __init__(self, kind, addr=0, data=None, count=0):
        self.kind = kind
        self.addr = addr
        self.data = data
        self.count = count
        self.done = False
        self.result = None
        self.error = None


class PySimTransport(Transport):
    """Transport running a DUT in Amaranth's Python simulator.

    Parameters
    ----------
    dut : wiring.Component, callable or AccelConfig
        The design: a component with ``host`` (Wishbone target, the ``accel.wishbone`` member names)
        and ``irq``, or a function returning one; or an ``AccelConfig``, from which
        ``accel.soc.SoC(config)`` is built.
    backdoor : bool
        Use ``dut.mem`` (if it is a ``MemoryData``) for memory-range reads and writes (see the module
        docstring).
    clock_period : float
        Period of the ``sync`` clock in seconds (only matters for VCD time stamps).
    resettable : bool
        Give the design a ``sync`` reset that ``reset_after`` asserts.

    Members
    -------
    dut : the simulated component
    cycles : int
        Rising clock edges simulated so far (the same count as ``CxxrtlTransport.cycles``).
    resets : int
        Resets asserted so far (``reset_after``).
    fmax_hz : None
    """

    fmax_hz = None

    def __init__(self, dut, *, backdoor=True, clock_period=1e-6, resettable=False):
        dut = resolve_dut(dut, "PySimTransport")
        self.dut = dut
        self.cycles = 0
        self.resets = 0
        self._reset_at = None
        self._mem = None
        if backdoor:
            for name in ("mem", "mem_data"):
                if isinstance(getattr(dut, name, None), MemoryData):
                    self._mem = getattr(dut, name)
                    break
        self._queue = collections.deque()
        self._closed = False
        self._domain = None
        top = dut
        if resettable:
            top = Module()
            top.domains.sync = self._domain = ClockDomain("sync")
            top.submodules.dut = dut
        self.sim = Simulator(top)
        self.sim.add_clock(clock_period)
        # Amaranth makes a testbench's coroutine when it is added; added at the first operation,
        # a transport that never runs leaves no coroutine unawaited behind.
        self._testbenches = [(self._server, False)] + ([(self._reset_button, True)] if resettable else [])
        self._vcd = None
        if os.environ.get("PEA_VCD") == "1":
            vcd_dir = Path(__file__).resolve().parent.parent / "build" / "vcd"
            vcd_dir.mkdir(parents=True, exist_ok=True)
            self._vcd = self.sim.write_vcd(str(vcd_dir / "pysim_transport.vcd"))
            self._vcd.__enter__()

    # The bus server -------------------------------------------------------------------------------
    async def _server(self, ctx):
        bus = self.dut.host
        irq = self.dut.irq
        while True:
            await ctx.tick()                      # the idle cycle that begins every operation
            self.cycles += 1
            if not self._queue:
                continue
            op = self._queue.popleft()
            try:
                if op.kind in (_READ, _WRITE):
                    result = []
                    for i in range(op.count):
                        if i:
                            await ctx.tick()      # one idle cycle between words
                            self.cycles += 1
                        ctx.set(bus.adr, op.addr + i)
                        ctx.set(bus.sel, 0xF)
                        ctx.set(bus.we, op.kind == _WRITE)
                        if op.kind == _WRITE:
                            ctx.set(bus.dat_w, op.data[i])
                        ctx.set(bus.cyc, 1)
                        ctx.set(bus.stb, 1)
                        while True:
                            ack, err, dat_r = ctx.get(bus.ack), ctx.get(bus.err), ctx.get(bus.dat_r)
                            await ctx.tick()
                            self.cycles += 1
                            if ack or err:
                                break
                        ctx.set(bus.cyc, 0)
                        ctx.set(bus.stb, 0)
                        ctx.set(bus.we, 0)
                        if err:
                            op.error = f"Wishbone error at word address {op.addr + i:#010x}"
                            break
                        result.append(dat_r)
                    op.result = result
                elif op.kind == _POKE:
                    for i, value in enumerate(op.data):
                        ctx.set(self._mem[op.addr + i], value)
                elif op.kind == _PEEK:
                    op.result = [ctx.get(self._mem[op.addr + i]) for i in range(op.count)]
                elif op.kind == _WAIT_IRQ:
                    n = 0
                    while not ctx.get(irq) and n < op.count:
                        await ctx.tick()
                        n += 1
                    self.cycles += n
                    op.result = (bool(ctx.get(irq)), n)
            except Exception as exc:              # surface it in the caller, not inside the sim
                op.error = f"{type(exc).__name__}: {exc}"
            op.done = True

    async def _reset_button(self, ctx):
        while True:
            await ctx.tick()
            if self._reset_at is not None and self.cycles >= self._reset_at:
                self._reset_at = None
                ctx.set(self._domain.rst, 1)
                await ctx.tick()                  # every register takes its reset value here
                ctx.set(self._domain.rst, 0)
                self.resets += 1

    def reset_after(self, cycles):
        """Assert the design's reset for one cycle once ``cycles`` more clock cycles have been
        simulated (during whatever operation the host has started by then). Needs
        ``resettable=True``."""
        if self._domain is None:
            raise TransportError("reset_after needs a PySimTransport made with resettable=True")
        if not isinstance(cycles, int) or cycles < 0:
            raise ValueError(f"cycles must be a non-negative integer, not {cycles!r}")
        self._reset_at = self.cycles + cycles

    def _run(self, op):
        if self._closed:
            raise TransportError("the simulation transport is closed")
        self._queue.append(op)
        for testbench, background in self._testbenches:
            self.sim.add_testbench(testbench, background=background)
        self._testbenches = []
        while not op.done:
            self.sim.advance()
        if op.error is not None:
            raise TransportError(op.error)
        return op.result

    def _in_memory(self, addr, count):
        return self._mem is not None and 0 <= addr and addr + count <= self._mem.depth

    # Transport ------------------------------------------------------------------------------------
    async def write_words(self, addr, words):
        words = [int(w) & 0xFFFF_FFFF for w in words]
        if not words:
            return
        if self._in_memory(addr, len(words)):
            self._run(_Op(_POKE, addr, words))
        else:
            self._run(_Op(_WRITE, addr, words, len(words)))

    async def read_words(self, addr, count):
        if count <= 0:
            return []
        if self._in_memory(addr, count):
            return self._run(_Op(_PEEK, addr, count=count))
        return self._run(_Op(_READ, addr, count=count))

    async def wait_irq(self, timeout_cycles):
        fired, _ = self._run(_Op(_WAIT_IRQ, count=int(timeout_cycles)))
        return fired

    async def wait_irq_cycles(self, timeout_cycles):
        """Like ``wait_irq``, but returns ``(fired, cycles_waited)`` (for tests and benchmarks)."""
        return self._run(_Op(_WAIT_IRQ, count=int(timeout_cycles)))

    async def close(self):
        if not self._closed and self._vcd is not None:
            self._vcd.__exit__(None, None, None)
        self._closed = True
