"""The accelerator system: main memory, bus, registers, sequencer, DMA and layer engine.

```
 host ------\
 sequencer --+--> Arbiter --> RegisterSlice --> Decoder --+--> main memory (SRAM, word 0)
 DMA -------/                                              +--> CSR block (word 0x1000_0000)
   | local port; pixels (through a 2-word buffer)
 LayerEngine <-- descriptor, start/done -- sequencer
```

One ``AccelConfig`` parameterizes everything; ``platforms/`` and ``firmware/`` use the same object.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from . import wishbone
from contract.config import AccelConfig
from .csr import CSRBank
from .dma import DMA
from .engine import LayerEngine
from .fault_injector import MemoryFaultInjector
from contract.registers import REGISTERS, CSR_BASE, constants
from .sequencer import Sequencer, WATCHDOG_CYCLES


__all__ = ["SoC", "MEM_BASE_WORD", "CSR_BASE_WORD", "FAULTS_BASE_WORD"]


MEM_BASE_WORD = 0
CSR_BASE_WORD = CSR_BASE // 4
# The fault injector's registers (``fault_injection=True`` only), byte address 0x6000_0000.
FAULTS_BASE_WORD = 0x1800_0000
# Initiator order on the arbiter.
HOST, SEQUENCER, DMA_PORT = range(3)


class SoC(wiring.Component):
    """The whole accelerator behind one Wishbone target port.

    Parameters
    ----------
    config : AccelConfig
        Sizes of the instance.
    mem_init : iterable of int, optional
        Initial main-memory contents (e.g. a compiled model baked into the bitstream).
    watchdog_cycles : int
        Per-descriptor time limit before a run ends with ``TIMEOUT``.
    fault_injection : bool
        For simulation: put a :class:`accel.fault_injector.MemoryFaultInjector` in front of main
        memory (wait states, bus errors, a target that never answers, while a program runs), its
        registers at word ``FAULTS_BASE_WORD``. Off by default: the board's SoC has none of it.

    Members
    -------
    host : ``In(wishbone.Signature(30, 32))``
        The host's port (UART bridge on a board, the simulator's driver in simulation): main memory
        at word 0, registers at word ``0x1000_0000`` (byte ``0x4000_0000``).
    irq : ``Out(1)``
        High when a run has finished (done or error) until the next start.
    busy : ``Out(1)``
        High while a run is in progress.
    mem : MemoryData
        Main memory contents, for simulators that load images directly.
    """

    def __init__(self, config, *, mem_init=None, watchdog_cycles=WATCHDOG_CYCLES,
                 fault_injection=False):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        self.fault_injection = bool(fault_injection)
        self.fault_injector = (MemoryFaultInjector(config.mem_words.bit_length() - 1)
                               if fault_injection else None)
        self.sram = wishbone.SRAM(config.mem_words, init=mem_init)
        self.sequencer = Sequencer(config, watchdog_cycles=watchdog_cycles)
        self.dma = DMA(config)
        self.engine = LayerEngine(config)
        self.csr = CSRBank(REGISTERS, constants=constants(config))
        super().__init__({
            "host": In(wishbone.Signature(30, 32)),
            "irq": Out(1),
            "busy": Out(1),
        })

    @property
    def mem(self):
        return self.sram.data

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        seq, dma, engine, csr = self.sequencer, self.dma, self.engine, self.csr

        m.submodules.sram = self.sram
        m.submodules.csr = csr
        m.submodules.sequencer = seq
        # An error, an abort or idleness resets the DMA and the engine: nothing is left half-way.
        # Registered: the strobe resets every register of both units (thousands of loads), so it
        # starts at a flip-flop rather than behind the CSR write decode and the sequencer's state.
        # The units leave reset one cycle after the sequencer becomes busy, well before its first
        # command (it fetches a descriptor first), and stop one cycle after an abort; a DMA beat
        # in that cycle stays inside the window, which was checked when the command started.
        # The units run in a clock domain of their own ("units": the same clock) whose reset is
        # that flip-flop alone. (A ResetInserter ORs the strobe with the domain's reset in a LUT,
        # and a LUT driving thousands of LSR inputs across the chip would set the clock.) The
        # flip-flop's own reset value is 1, so the units are in reset while the system is.
        units_reset = Signal(init=1)
        m.d.sync += units_reset.eq(seq.units_reset | csr.ctrl_abort)
        m.domains.units = cd_units = ClockDomain("units", local=True)
        m.d.comb += [cd_units.clk.eq(ClockSignal("sync")), cd_units.rst.eq(units_reset)]
        m.submodules.dma = DomainRenamer("units")(dma)
        m.submodules.engine = DomainRenamer("units")(engine)

        m.submodules.arbiter = arbiter = wishbone.Arbiter(3)
        # Registered both ways: the initiators' request logic, the arbiter and decoder multiplexers
        # and the targets' write enables would otherwise form one combinational path (with the
        # acknowledgement back into the initiators' next state), the design's deepest.
        m.submodules.bus_slice = bus_slice = wishbone.RegisterSlice()
        regions = [("mem", MEM_BASE_WORD, cfg.mem_words), ("csr", CSR_BASE_WORD, 1 << len(csr.bus.adr))]
        if self.fault_injector is not None:
            regions.append(("faults", FAULTS_BASE_WORD, 4))
        m.submodules.decoder = decoder = wishbone.Decoder(regions)
        wiring.connect(m, wiring.flipped(self.host), arbiter.initiators[HOST])
        wiring.connect(m, seq.bus, arbiter.initiators[SEQUENCER])
        wiring.connect(m, dma.bus, arbiter.initiators[DMA_PORT])
        wiring.connect(m, arbiter.bus, bus_slice.up)
        wiring.connect(m, bus_slice.down, decoder.bus)
        if self.fault_injector is None:
            wiring.connect(m, decoder.mem, self.sram.bus)
        else:
            m.submodules.fault_injector = injector = self.fault_injector
            wiring.connect(m, decoder.mem, injector.up)
            wiring.connect(m, injector.down, self.sram.bus)
            wiring.connect(m, decoder.faults, injector.control)
            m.d.comb += injector.armed.eq(seq.busy)
        wiring.connect(m, decoder.csr, csr.bus)

        # Registers <-> sequencer.
        m.d.comb += [
            seq.start.eq(csr.ctrl_start),
            seq.abort.eq(csr.ctrl_abort),
            seq.prog_addr.eq(csr.prog_addr),
            seq.window_base.eq(csr.window_base),
            seq.window_limit.eq(csr.window_limit),
            seq.layer_sel.eq(csr.layer_sel),
            csr.status_busy.eq(seq.busy),
            csr.status_done.eq(seq.done),
            csr.status_error.eq(seq.error),
            csr.error_code.eq(seq.error_code),
            csr.error_pc.eq(seq.error_pc),
            csr.cycles.eq(seq.cycles),
            csr.mac_busy.eq(seq.mac_busy_cycles),
            csr.layer_cycles.eq(seq.layer_cycles),
            csr.pc.eq(seq.pc),
            self.irq.eq(seq.done),
            self.busy.eq(seq.busy),
        ]

        # Sequencer -> DMA (with the run's window, latched by the sequencer at start: every access
        # is checked against the window the run started with, whatever the host writes meanwhile).
        wiring.connect(m, seq.dma_cmd, dma.cmd)
        m.d.comb += [
            seq.dma_done.eq(dma.done),
            seq.dma_error.eq(dma.error),
            dma.window_base.eq(seq.run_window_base),
            dma.window_limit.eq(seq.run_window_limit),
        ]

        # Sequencer -> engine; DMA -> engine's buffers and pixel input.
        m.d.comb += [
            engine.desc.eq(seq.desc),
            engine.start.eq(seq.engine_start),
            seq.engine_done.eq(engine.done),
            seq.engine_error.eq(engine.error),
            seq.mac_busy.eq(engine.mac_busy),
        ]
        wiring.connect(m, dma.local, engine.local)
        # The pixel stream through a 2-word buffer with registered outputs: the embedding unit's
        # ready (the end of its window-walk logic) would otherwise reach through the DMA's FIFO
        # read port back into its own byte registers in one cycle. Reset with the units, so an
        # aborted EMBED leaves no word behind.
        m.submodules.pixel_buffer = pixel_buffer = DomainRenamer("units")(
            SyncFIFOBuffered(width=32, depth=2))
        m.d.comb += [
            pixel_buffer.w_data.eq(dma.pixels.payload),
            pixel_buffer.w_en.eq(dma.pixels.valid),
            dma.pixels.ready.eq(pixel_buffer.w_rdy),
            engine.pixels.payload.eq(pixel_buffer.r_data),
            engine.pixels.valid.eq(pixel_buffer.r_rdy),
            pixel_buffer.r_en.eq(engine.pixels.ready),
        ]
        return m
