"""A Wishbone register block generated from a declarative register map (``contract/registers.py``).

A small stand-in for ``amaranth_soc.csr`` (not installable here): one component, ``CSRBank``, whose
ports are derived from the register table.
"""

from amaranth.hdl import Module, Signal, Const, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import wishbone
from contract.registers import Access, Register, REGISTERS


__all__ = ["CSRBank"]


class CSRBank(wiring.Component):
    """Wishbone target implementing a register map.

    Every transfer takes two cycles, like :class:`accel.wishbone.SRAM`: the request is seen in
    cycle 0 (writes take effect at its end), ``ack`` and the registered read data come in cycle 1.
    Unmapped offsets read 0 and ignore writes; they are acknowledged, never answered with ``err``.

    Port naming: for a register ``NAME`` with a single field ``value`` (a plain 32-bit register) the
    port is ``name`` (lower case); otherwise there is one port per field, ``name_field``, as wide as
    the field. By access kind:

    - ``RO``: ``In`` ports, sampled when the register is read. RO registers listed in ``constants``
      are hard-wired to that value and have no port.
    - ``RW``: ``Out`` ports holding the current value (reset value from the table). Writes honour
      the byte enables ``sel``.
    - ``W1``: per field an ``Out(1)`` strobe, high for exactly one cycle (the ``ack`` cycle) after a
      write in which the field's bits are not all zero (and their bytes are selected); plus
      ``name_wdata``, ``Out(32)``, the written word, valid during the strobes. Reads return 0.

    For the accelerator's map: ``ctrl_start``, ``ctrl_abort``, ``ctrl_wdata`` (W1);
    ``status_busy``, ``status_done``, ``status_error``, ``error_code``, ``error_pc``, ``cycles``,
    ``mac_busy``, ``layer_cycles``, ``pc`` (RO, In); ``prog_addr``, ``window_base``,
    ``window_limit``, ``layer_sel``, ``scratch`` (RW, Out); ``ID``, ``VERSION``, ``CONFIG0``,
    ``CONFIG1`` come from ``registers.constants(config)``.

    Parameters
    ----------
    registers : sequence of :class:`contract.registers.Register`
        The map (default: the accelerator's ``REGISTERS``).
    constants : dict of str to int, optional
        Values of constant RO registers, by register name.
    addr_width : int, optional
        Word-address width of the bus; default: the smallest that covers every register. The
        decoder region of the block must have ``2**addr_width`` words.

    Members
    -------
    bus : In(wishbone.Signature(addr_width, 32))
        The target port.
    <ports> :
        As described above.
    """
    def __init__(self, registers=REGISTERS, *, constants=None, addr_width=None):
        registers = tuple(registers)
        for r in registers:
            if not isinstance(r, Register):
                raise TypeError(f"registers must be Register objects, not {r!r}")
        constants = dict(constants or {})
        by_name = {r.name: r for r in registers}
        for name, value in constants.items():
            if name not in by_name:
                raise ValueError(f"constants: unknown register {name!r}")
            if by_name[name].access is not Access.RO:
                raise ValueError(f"constants: register {name} is not RO")
            if not isinstance(value, int) or not 0 <= value < 2**32:
                raise ValueError(f"constants: value of {name} must be a 32-bit unsigned int, not {value!r}")
        need = max([r.word for r in registers], default=0) + 1
        min_width = max(1, (need - 1).bit_length())
        if addr_width is None:
            addr_width = min_width
        if not isinstance(addr_width, int) or addr_width < min_width:
            raise ValueError(f"addr_width must be an integer >= {min_width}, not {addr_width!r}")
        words = {}
        for r in registers:
            if r.word in words:
                raise ValueError(f"registers {words[r.word].name} and {r.name} share offset {r.offset:#x}")
            words[r.word] = r
        self._registers = registers
        self._constants = constants

        members = {"bus": In(wishbone.Signature(addr_width, 32))}
        for r in registers:
            if r.access is Access.RO:
                if r.name in constants:
                    continue
                for f in r.fields:
                    members[r.port_name(f)] = In(f.width)
            elif r.access is Access.RW:
                for f in r.fields:
                    members[r.port_name(f)] = Out(f.width, init=(r.reset >> f.lsb) & ((1 << f.width) - 1))
            else:
                for f in r.fields:
                    members[r.port_name(f)] = Out(1)
                members[f"{r.name.lower()}_wdata"] = Out(32)
        if len(members) != 1 + sum(
                0 if (r.access is Access.RO and r.name in constants) else
                len(r.fields) + (r.access is Access.W1) for r in registers):
            raise ValueError("register map gives two ports the same name")
        super().__init__(members)

    @property
    def registers(self):
        return self._registers

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        ack = Signal()
        req = Signal()
        m.d.comb += [req.eq(bus.cyc & bus.stb & ~ack), bus.ack.eq(ack)]
        m.d.sync += ack.eq(req)

        rd = Signal(32)       # read value of the addressed register (0 when unmapped or W1)
        wr = Signal()         # a write transfer is performed in this cycle
        m.d.comb += wr.eq(req & bus.we)
        # byte-enable mask of the write, one bit per data bit
        bmask = Signal(32)
        m.d.comb += bmask.eq(Cat(*(bus.sel[b].replicate(8) for b in range(4))))

        with m.Switch(bus.adr):
            for r in self._registers:
                with m.Case(r.word):
                    if r.access is Access.RO:
                        if r.name in self._constants:
                            m.d.comb += rd.eq(self._constants[r.name])
                        else:
                            for f in r.fields:
                                m.d.comb += rd[f.lsb:f.msb + 1].eq(getattr(self, r.port_name(f)))
                    elif r.access is Access.RW:
                        for f in r.fields:
                            port = getattr(self, r.port_name(f))
                            m.d.comb += rd[f.lsb:f.msb + 1].eq(port)
                            with m.If(wr):
                                sl = slice(f.lsb, f.msb + 1)
                                m.d.sync += port.eq((port & ~bmask[sl]) | (bus.dat_w[sl] & bmask[sl]))

        # W1 strobes: registered, so they coincide with ack and last one cycle.
        for r in self._registers:
            if r.access is not Access.W1:
                continue
            hit = Signal(name=f"{r.name.lower()}_hit")
            m.d.comb += hit.eq(wr & (bus.adr == r.word))
            for f in r.fields:
                bits = (bus.dat_w & bmask)[f.lsb:f.msb + 1]
                m.d.sync += getattr(self, r.port_name(f)).eq(hit & bits.any())
            wdata = getattr(self, f"{r.name.lower()}_wdata")
            with m.If(hit):
                m.d.sync += wdata.eq(bus.dat_w)

        with m.If(req & ~bus.we):
            m.d.sync += bus.dat_r.eq(rd)
        return m
