"""A Wishbone stage in front of main memory that injects wait states, bus errors and a hang.

Simulation only: ``SoC(config, fault_injection=True)`` puts it between the address decoder and main
memory and maps its registers at word ``FAULTS_BASE_WORD``; the default SoC has none of it. Tests
and the soak (``bench/soak.py``) use it to show that the accelerator reports every fault in its
status register, never hangs, never writes outside its window, and runs the next program bit-exactly.

Faults apply only while ``armed`` is high (the SoC is running a program), so the host can always
load memory and read results back. Transfers are counted from the moment ``armed`` rises.

Registers (word offsets in the region, 32 bits):

=====  ===========  ===================================================================================
0      WAIT         bits 7:0: stall probability, a transfer waits a cycle while the 16-bit LFSR's low
                    byte is below this value (0: no wait states, 255: almost always; the
                    longest wait is 65 cycles at 200, 607 at 250);
                    bits 31:16: the LFSR seed, loaded on write (0 is replaced by 1)
1      ERROR_AT     answer the n-th transfer of the run (1-based) with ``err`` instead of passing it
                    to memory (0: never)
2      HANG_AT      from the n-th transfer of the run on, never answer (0: never): a target that never
                    acknowledges, which the sequencer's watchdog must end
3      TRANSFERS    read-only: transfers counted since ``armed`` last rose
=====  ===========  ===================================================================================
"""

from amaranth.hdl import Module, Signal, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import wishbone


__all__ = ["MemoryFaultInjector", "FAULT_REGISTERS"]


FAULT_REGISTERS = {"WAIT": 0, "ERROR_AT": 1, "HANG_AT": 2, "TRANSFERS": 3}


class _FaultRegisters(wiring.Component):
    """The four registers on a two-bit Wishbone target; one-cycle answers."""

    def __init__(self):
        super().__init__({
            "bus": In(wishbone.Signature(2, 32)),
            "wait_threshold": Out(8), "seed": Out(16), "seed_load": Out(1),
            "error_at": Out(32), "hang_at": Out(32), "transfers": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        ack = Signal()
        m.d.sync += ack.eq(bus.cyc & bus.stb & ~ack)
        m.d.comb += bus.ack.eq(ack)
        m.d.sync += self.seed_load.eq(0)
        with m.If(bus.cyc & bus.stb & bus.we & ~ack):
            with m.Switch(bus.adr):
                with m.Case(FAULT_REGISTERS["WAIT"]):
                    m.d.sync += [self.wait_threshold.eq(bus.dat_w[:8]), self.seed.eq(bus.dat_w[16:]),
                                 self.seed_load.eq(1)]
                with m.Case(FAULT_REGISTERS["ERROR_AT"]):
                    m.d.sync += self.error_at.eq(bus.dat_w)
                with m.Case(FAULT_REGISTERS["HANG_AT"]):
                    m.d.sync += self.hang_at.eq(bus.dat_w)
        with m.Switch(bus.adr):
            with m.Case(FAULT_REGISTERS["WAIT"]):
                m.d.comb += bus.dat_r.eq(Cat(self.wait_threshold, Const(0, 8), self.seed))
            with m.Case(FAULT_REGISTERS["ERROR_AT"]):
                m.d.comb += bus.dat_r.eq(self.error_at)
            with m.Case(FAULT_REGISTERS["HANG_AT"]):
                m.d.comb += bus.dat_r.eq(self.hang_at)
            with m.Case(FAULT_REGISTERS["TRANSFERS"]):
                m.d.comb += bus.dat_r.eq(self.transfers)
        return m


class MemoryFaultInjector(wiring.Component):
    """Passes transfers from ``up`` to ``down`` unless a fault is due.

    Parameters
    ----------
    addr_width : int
        Word-address width of the memory behind it.

    Members
    -------
    up : In(wishbone.Signature(addr_width, 32))
        From the decoder.
    down : Out(wishbone.Signature(addr_width, 32))
        To main memory. A transfer is forwarded from the cycle after it is accepted until its ack.
    control : In(wishbone.Signature(2, 32))
        The registers above.
    armed : In(1)
        Faults apply while high; its rising edge clears the transfer count.
    """

    def __init__(self, addr_width):
        if not isinstance(addr_width, int) or addr_width < 1:
            raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
        super().__init__({
            "up": In(wishbone.Signature(addr_width, 32)),
            "down": Out(wishbone.Signature(addr_width, 32)),
            "control": In(wishbone.Signature(2, 32)),
            "armed": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.registers = registers = _FaultRegisters()
        wiring.connect(m, wiring.flipped(self.control), registers.bus)
        up, down = self.up, self.down

        lfsr = Signal(16, init=1)
        with m.If(registers.seed_load):
            m.d.sync += lfsr.eq(registers.seed | (registers.seed == 0))
        with m.Else():       # Galois LFSR, taps 16, 14, 13, 11: period 65,535
            m.d.sync += lfsr.eq(Cat(lfsr[1:], 0) ^ (lfsr[0].replicate(16) & 0xB400))

        armed_before = Signal()
        transfers = Signal(32)
        counted = Signal()          # the transfer now requested has been counted
        m.d.sync += armed_before.eq(self.armed)
        m.d.comb += registers.transfers.eq(transfers)
        request = up.cyc & up.stb
        number = Signal(32)         # this transfer's number in the run
        m.d.comb += number.eq(transfers + ~counted)
        with m.If(self.armed & ~armed_before):
            m.d.sync += [transfers.eq(0), counted.eq(0)]
        with m.Elif(request & ~counted & self.armed):
            m.d.sync += [transfers.eq(number), counted.eq(1)]

        hang = self.armed & (registers.hang_at != 0) & (number >= registers.hang_at)
        error = self.armed & (registers.error_at != 0) & (number == registers.error_at)
        wait = self.armed & (lfsr[:8] < registers.wait_threshold)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~up.cyc):         # an abandoned transfer is not counted twice
                    m.d.sync += counted.eq(0)
                with m.If(request & ~hang):
                    with m.If(error):
                        m.next = "ERROR"
                    with m.Elif(~wait):
                        m.next = "FORWARD"
            with m.State("FORWARD"):
                m.d.comb += [down.cyc.eq(up.cyc), down.stb.eq(up.stb), up.ack.eq(down.ack),
                             up.dat_r.eq(down.dat_r)]
                with m.If(down.ack | ~up.cyc):
                    m.d.sync += counted.eq(0)
                    m.next = "IDLE"
            with m.State("ERROR"):
                m.d.comb += up.err.eq(1)
                m.d.sync += counted.eq(0)
                m.next = "IDLE"
        m.d.comb += [down.we.eq(up.we), down.sel.eq(up.sel), down.adr.eq(up.adr),
                     down.dat_w.eq(up.dat_w)]
        return m
