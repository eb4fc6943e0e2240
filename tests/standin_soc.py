"""A stand-in for ``accel.soc.SoC`` with the same ports, for testing the host-side stack.

It has main memory at word 0 and a CSR block at word ``0x1000_0000`` laid out like
``contract/registers.py``, and a fake "engine": a write of CTRL.start reads a pseudo-descriptor at
PROG_ADDR (word 0 ``{op[3:0] (ignored; nonzero so the driver counts one layer), n_cycles[15:4],
error[23:16], index[31:24]}``, then ``src``, ``dst``, ``count``), waits
``n_cycles`` cycles, then either raises the error (code and descriptor index in ERROR) or copies
``count`` words from ``src`` to ``dst`` adding 1 to each, and raises ``irq``. The engine checks
PROG_ADDR against the window, as the real sequencer does. The transports, the driver and the
compiled simulator are tested against it until (and besides) the real SoC.
"""

from amaranth import *
from amaranth.lib import wiring, memory
from amaranth.lib.wiring import In, Out

from accel import wishbone
from contract.config import TINY
from contract.registers import constants


__all__ = ["StandInSoC", "ID_VALUE", "VERSION_VALUE"]


ID_VALUE = 0x5045_4131
VERSION_VALUE = 0x0001_0001   # ISA version 1 in [15:0], hardware revision 1 in [31:16]
CSR_BASE = 0x1000_0000


class StandInSoC(wiring.Component):
    """Parameters
    ----------
    mem_words : int
        Words of main memory (a power of two).
    config : AccelConfig
        Reported in CONFIG0/CONFIG1 (``contract.registers.constants``); its ``mem_words`` is not used.

    Members
    -------
    host : In(wishbone.Signature(30, 32))
    irq : Out(1)
    busy : Out(1)
    mem : MemoryData
        The main memory's storage (for back-door loads in simulation), as ``SoC.mem``.
    """
    def __init__(self, mem_words=1024, config=TINY):
        if mem_words <= 0 or mem_words & (mem_words - 1):
            raise ValueError(f"mem_words must be a power of two, not {mem_words}")
        self.mem_words = mem_words
        consts = constants(config.replace(mem_words=mem_words))
        self.config0 = consts["CONFIG0"]
        self.config1 = consts["CONFIG1"]
        self.mem = memory.MemoryData(shape=32, depth=mem_words, init=[])
        super().__init__({"host": In(wishbone.Signature(30, 32)), "irq": Out(1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(data=self.mem)
        rp = mem.read_port()
        wp = mem.write_port()
        aw = (self.mem_words - 1).bit_length()

        prog_addr = Signal(32)
        win_base = Signal(32)
        win_limit = Signal(32)
        cycles = Signal(32)
        mac_busy = Signal(32)
        layer_sel = Signal(32)
        scratch = Signal(32)
        busy = Signal()
        done = Signal()
        error = Signal()
        err_code = Signal(8)
        err_index = Signal(16)
        pc = Signal(32)

        # Engine registers.
        n_wait = Signal(16)
        src = Signal(32)
        dst = Signal(32)
        count = Signal(32)
        data = Signal(32)

        m.d.comb += [self.irq.eq(done), self.busy.eq(busy)]

        wb = self.host
        is_csr = Signal()
        m.d.comb += is_csr.eq(wb.adr[4:] == (CSR_BASE >> 4))
        is_mem = Signal()
        m.d.comb += is_mem.eq(wb.adr < self.mem_words)
        start = Signal()

        # Host port: one wait state (registered ack), memory access only while the engine idles.
        with m.FSM(name="host"):
            with m.State("IDLE"):
                with m.If(wb.cyc & wb.stb):
                    with m.If(is_csr):
                        m.next = "CSR"
                    with m.Elif(is_mem & ~busy):
                        m.d.comb += [rp.addr.eq(wb.adr[:aw]), rp.en.eq(1)]
                        m.d.comb += [wp.addr.eq(wb.adr[:aw]), wp.data.eq(wb.dat_w),
                                     wp.en.eq(wb.we)]
                        m.next = "MEM_ACK"
                    with m.Elif(~is_mem):
                        m.next = "ERR"
            with m.State("MEM_ACK"):
                m.d.comb += [wb.ack.eq(1), wb.dat_r.eq(rp.data)]
                m.next = "IDLE"
            with m.State("ERR"):
                m.d.comb += wb.err.eq(1)
                m.next = "IDLE"
            with m.State("CSR"):
                m.d.comb += wb.ack.eq(1)
                regs = {
                    0x0: C(ID_VALUE, 32), 0x1: C(VERSION_VALUE, 32), 0x2: C(self.config0, 32),
                    0x3: C(self.config1, 32), 0x4: C(0, 32), 0x5: Cat(busy, done, error),
                    0x6: Cat(err_code, C(0, 8), err_index), 0x7: prog_addr, 0x8: win_base,
                    0x9: win_limit, 0xA: cycles, 0xB: mac_busy, 0xC: layer_sel,
                    0xD: (n_wait + layer_sel)[:32], 0xE: pc, 0xF: scratch,
                }
                with m.Switch(wb.adr[:4]):
                    for idx, value in regs.items():
                        with m.Case(idx):
                            m.d.comb += wb.dat_r.eq(value)
                with m.If(wb.we):
                    with m.Switch(wb.adr[:4]):
                        with m.Case(0x4):
                            m.d.comb += start.eq(wb.dat_w[0] & ~busy)
                        with m.Case(0x7):
                            m.d.sync += prog_addr.eq(wb.dat_w)
                        with m.Case(0x8):
                            m.d.sync += win_base.eq(wb.dat_w)
                        with m.Case(0x9):
                            m.d.sync += win_limit.eq(wb.dat_w)
                        with m.Case(0xC):
                            m.d.sync += layer_sel.eq(wb.dat_w)
                        with m.Case(0xF):
                            m.d.sync += scratch.eq(wb.dat_w)
                m.next = "IDLE"

        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        with m.FSM(name="engine"):
            with m.State("IDLE"):
                with m.If(start):
                    m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), cycles.eq(0),
                                 mac_busy.eq(0), pc.eq(prog_addr), err_code.eq(0),
                                 err_index.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If((pc < win_base) | (pc + 4 > win_limit)):
                    m.d.sync += [err_code.eq(2), err_index.eq(0), error.eq(1), done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [rp.addr.eq(pc), rp.en.eq(1)]
                    m.next = "D0"
            with m.State("D0"):
                m.d.sync += n_wait.eq(rp.data[4:16])
                m.d.sync += [err_code.eq(rp.data[16:24]), err_index.eq(rp.data[24:32])]
                m.d.comb += [rp.addr.eq(pc + 1), rp.en.eq(1)]
                m.next = "D1"
            with m.State("D1"):
                m.d.sync += src.eq(rp.data)
                m.d.comb += [rp.addr.eq(pc + 2), rp.en.eq(1)]
                m.next = "D2"
            with m.State("D2"):
                m.d.sync += dst.eq(rp.data)
                m.d.comb += [rp.addr.eq(pc + 3), rp.en.eq(1)]
                m.next = "D3"
            with m.State("D3"):
                m.d.sync += count.eq(rp.data)
                m.d.sync += pc.eq(n_wait)   # reused as the wait counter
                m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(pc == 0):
                    with m.If(err_code != 0):
                        m.d.sync += [error.eq(1), done.eq(1), busy.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "COPY_READ"
                with m.Else():
                    m.d.sync += pc.eq(pc - 1)
            with m.State("COPY_READ"):
                with m.If(count == 0):
                    m.d.sync += [done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [rp.addr.eq(src), rp.en.eq(1)]
                    m.next = "COPY_WRITE"
            with m.State("COPY_WRITE"):
                m.d.comb += [wp.addr.eq(dst), wp.data.eq(rp.data + 1), wp.en.eq(1)]
                m.d.sync += [src.eq(src + 1), dst.eq(dst + 1), count.eq(count - 1),
                             mac_busy.eq(mac_busy + 1)]
                m.next = "COPY_READ"
        return m
