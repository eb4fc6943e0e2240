"""A small classic Wishbone B4 toolkit: the bus signature, an arbiter, an address decoder and a
block-RAM target.

Only what the accelerator's SoC needs (``docs/ARCHITECTURE.md`` 3.4): 32-bit data, byte granularity
(``sel`` has one bit per byte), word addresses, classic (non-pipelined, non-burst) cycles. A transfer
ends in the first cycle where ``cyc & stb & (ack | err)`` holds; ``ack``/``err`` may be combinational
or registered, initiators must accept both, and must not assume a fixed latency (a
:class:`RegisterSlice` adds two cycles).

``amaranth-soc`` is not installable here; the interfaces follow its ``wishbone.bus`` closely so that
a later switch costs little.
"""

from amaranth.hdl import Module, Signal, Cat, Const, MemoryData
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory
from .synthesis import NO_COLLISIONS


__all__ = ["Signature", "Arbiter", "RegisterSlice", "Decoder", "Region", "SRAM"]


def _check_widths(addr_width, data_width):
    if not isinstance(addr_width, int) or isinstance(addr_width, bool) or addr_width < 0:
        raise TypeError(f"addr_width must be a non-negative integer, not {addr_width!r}")
    if not isinstance(data_width, int) or isinstance(data_width, bool) or data_width not in (8, 16, 32, 64):
        raise ValueError(f"data_width must be 8, 16, 32 or 64, not {data_width!r}")


class Signature(wiring.Signature):
    """Classic Wishbone B4, from the initiator's point of view.

    Parameters
    ----------
    addr_width : int
        Width of the word address ``adr``.
    data_width : int
        Width of ``dat_w``/``dat_r``; ``sel`` has ``data_width // 8`` bits (granularity 8).

    Members
    -------
    cyc, stb, we : Out(1)
        Cycle (held for the whole bus cycle, which may span several transfers), strobe (a
        transfer is requested), write enable.
    sel : Out(data_width // 8)
        Byte enables. Writes only change the selected bytes.
    adr : Out(addr_width)
        Word address.
    dat_w : Out(data_width)
        Write data.
    dat_r : In(data_width)
        Read data, valid in the cycle of ``ack``.
    ack, err : In(1)
        End of a transfer: success or failure.
    """
    def __init__(self, addr_width=30, data_width=32):
        _check_widths(addr_width, data_width)
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "cyc":   Out(1),
            "stb":   Out(1),
            "we":    Out(1),
            "sel":   Out(data_width // 8),
            "adr":   Out(addr_width),
            "dat_w": Out(data_width),
            "dat_r": In(data_width),
            "ack":   In(1),
            "err":   In(1),
        })

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def data_width(self):
        return self._data_width

    def __eq__(self, other):
        return (isinstance(other, Signature) and self.addr_width == other.addr_width
                and self.data_width == other.data_width)

    def __hash__(self):
        return hash((Signature, self.addr_width, self.data_width))

    def __repr__(self):
        return f"wishbone.Signature(addr_width={self.addr_width}, data_width={self.data_width})"


class Arbiter(wiring.Component):
    """Shares one Wishbone bus between several initiators, round-robin.

    The grant is a register. While the granted initiator holds ``cyc``, it keeps the bus (its bus
    cycle is never broken, so a read-modify-write or a burst stays atomic). In every cycle where the
    granted initiator's ``cyc`` is low, the grant moves to the next requesting initiator after it
    in cyclic order (itself last), so every requester is served after at most ``n_initiators - 1``
    other bus cycles: no starvation, provided initiators release ``cyc`` after finite bus cycles.
    Switching costs no cycle when the bus was idle one cycle before; an initiator that is not
    granted simply waits with ``cyc`` high.

    Parameters
    ----------
    n_initiators : int
        Number of initiators, at least 1.
    addr_width, data_width : int
        Bus widths (see :class:`Signature`).

    Members
    -------
    initiators : In(Signature).array(n_initiators)
        Buses from the initiators; index 0 is granted after reset.
    bus : Out(Signature)
        The shared bus, towards the targets (usually a :class:`Decoder`).
    grant : Out(range(n_initiators))
        The initiator currently granted (for debugging and tests).
    """
    def __init__(self, n_initiators, *, addr_width=30, data_width=32):
        if not isinstance(n_initiators, int) or isinstance(n_initiators, bool) or n_initiators < 1:
            raise ValueError(f"n_initiators must be a positive integer, not {n_initiators!r}")
        self._n = n_initiators
        sig = Signature(addr_width, data_width)
        super().__init__({
            "initiators": In(sig).array(n_initiators),
            "bus": Out(sig),
            "grant": Out(range(max(n_initiators, 2))),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        grant = self.grant

        # Next grant when the current owner has released the bus: the first requester after the
        # current owner in cyclic order, the current owner last (it keeps an idle grant).
        if n > 1:
            with m.If(~self.bus.cyc):
                with m.Switch(grant):
                    for g in range(n):
                        with m.Case(g):
                            order = [(g + k) % n for k in range(1, n + 1)]
                            with m.If(self.initiators[order[0]].cyc):
                                m.d.sync += grant.eq(order[0])
                            for idx in order[1:]:
                                with m.Elif(self.initiators[idx].cyc):
                                    m.d.sync += grant.eq(idx)

        with m.Switch(grant):
            for g in range(n):
                with m.Case(g):
                    ini = self.initiators[g]
                    m.d.comb += [
                        self.bus.cyc.eq(ini.cyc),
                        self.bus.stb.eq(ini.stb),
                        self.bus.we.eq(ini.we),
                        self.bus.sel.eq(ini.sel),
                        self.bus.adr.eq(ini.adr),
                        self.bus.dat_w.eq(ini.dat_w),
                        ini.ack.eq(self.bus.ack),
                        ini.err.eq(self.bus.err),
                    ]
        # Read data may go to everyone: it only matters together with ack.
        for ini in self.initiators:
            m.d.comb += ini.dat_r.eq(self.bus.dat_r)
        return m


class RegisterSlice(wiring.Component):
    """Registers a Wishbone bus in both directions, cutting the combinational paths through it.

    Without it, the SoC's bus is one combinational web: an initiator's state -> its request ->
    the arbiter's multiplexer -> the decoder's address match -> every target's write enables, and
    a target's ``ack`` -> the decoder's and the arbiter's multiplexers -> the initiator's next state
    (the deepest paths of the design). Behind a slice, ``cyc``/``stb``/``we``/``sel``/``adr``/
    ``dat_w`` reach the targets from flip-flops and ``ack``/``err``/``dat_r`` reach the initiator
    from flip-flops.

    A transfer takes two cycles more than the target needs: the request is registered in the
    cycle the initiator presents it, and the response in the cycle the target gives it (a
    three-cycle :class:`SRAM` transfer takes five). One transfer is in flight at a time. An
    initiator that drops ``stb`` or ``cyc`` before its response (a unit reset mid-transfer, a host
    time-out) abandons it: the target still completes it, and its response is dropped, not handed to
    whichever initiator the arbiter grants next.

    Parameters
    ----------
    addr_width, data_width : int
        Bus widths (see :class:`Signature`).

    Members
    -------
    up : In(Signature(addr_width, data_width))
        From the initiator (usually an :class:`Arbiter`'s ``bus``).
    down : Out(Signature(addr_width, data_width))
        To the targets (usually a :class:`Decoder`), driven by registers.
    """
    def __init__(self, *, addr_width=30, data_width=32):
        _check_widths(addr_width, data_width)
        sig = Signature(addr_width, data_width)
        super().__init__({"up": In(sig), "down": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        up, down = self.up, self.down
        ack = Signal()          # registered response towards the initiator
        err = Signal()
        dat_r = Signal.like(up.dat_r)
        dropped = Signal()      # the in-flight transfer was abandoned by its initiator
        m.d.comb += [up.ack.eq(ack), up.err.eq(err), up.dat_r.eq(dat_r)]

        requesting = up.cyc & up.stb
        in_flight = down.stb
        # A new request: not while one is in flight, nor in the cycle its response is presented
        # (the initiator still holds stb then).
        with m.If(requesting & ~in_flight & ~ack & ~err):
            m.d.sync += [down.stb.eq(1), down.we.eq(up.we), down.sel.eq(up.sel),
                         down.adr.eq(up.adr), down.dat_w.eq(up.dat_w), dropped.eq(0)]
        m.d.sync += down.cyc.eq(up.cyc | (in_flight & ~(down.ack | down.err)))

        m.d.sync += [ack.eq(0), err.eq(0)]
        with m.If(in_flight):
            with m.If(~requesting):
                m.d.sync += dropped.eq(1)
            with m.If(down.ack | down.err):
                m.d.sync += down.stb.eq(0)
                keep = requesting & ~dropped
                m.d.sync += [ack.eq(down.ack & keep), err.eq(down.err & keep), dat_r.eq(down.dat_r)]
        return m


class Region:
    """One address region of a :class:`Decoder`.

    Parameters
    ----------
    name : str
        Name of the target port of the decoder (a Python identifier).
    base : int
        First word address; a multiple of ``size``.
    size : int
        Number of words, a power of two. The target sees the address inside the region on a bus of
        ``log2(size)`` address bits.
    """
    def __init__(self, name, base, size):
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"Region name must be an identifier string, not {name!r}")
        if not isinstance(size, int) or size < 1 or size & (size - 1):
            raise ValueError(f"Region {name}: size must be a power of two, not {size!r}")
        if not isinstance(base, int) or base < 0 or base % size:
            raise ValueError(f"Region {name}: base must be a non-negative multiple of size "
                             f"({size}), not {base!r}")
        self.name = name
        self.base = base
        self.size = size

    @property
    def addr_width(self):
        return self.size.bit_length() - 1

    def __repr__(self):
        return f"Region({self.name!r}, base={self.base:#x}, size={self.size:#x})"


class Decoder(wiring.Component):
    """Routes the transfers of one initiator to targets by address.

    A transfer whose address falls in no region is answered with ``err`` (a registered one-cycle
    pulse, so the initiator always sees the transfer end).

    Parameters
    ----------
    regions : list of :class:`Region` or (name, base, size) tuples
        Non-overlapping word-address regions.
    addr_width, data_width : int
        Widths of the initiator bus.

    Members
    -------
    bus : In(Signature(addr_width, data_width))
        From the initiator (usually an :class:`Arbiter`'s ``bus``).
    <region name> : Out(Signature(log2(size), data_width))
        One port per region; ``adr`` is the word offset inside the region. Only the selected target
        sees ``cyc``; ``stb``, ``we``, ``sel``, ``dat_w`` go to all.
    """
    def __init__(self, regions, *, addr_width=30, data_width=32):
        _check_widths(addr_width, data_width)
        regs = []
        for r in regions:
            if not isinstance(r, Region):
                r = Region(*r)
            if r.base + r.size > (1 << addr_width):
                raise ValueError(f"{r!r} does not fit in a {addr_width}-bit address")
            regs.append(r)
        names = set()
        for r in regs:
            if r.name in names or r.name == "bus":
                raise ValueError(f"region name {r.name!r} is used twice or reserved")
            names.add(r.name)
        ordered = sorted(regs, key=lambda r: r.base)
        for a, b in zip(ordered, ordered[1:]):
            if a.base + a.size > b.base:
                raise ValueError(f"regions {a!r} and {b!r} overlap")
        self._regions = regs
        self._addr_width = addr_width
        members = {"bus": In(Signature(addr_width, data_width))}
        for r in regs:
            members[r.name] = Out(Signature(r.addr_width, data_width))
        super().__init__(members)

    @property
    def regions(self):
        return list(self._regions)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        hits = []
        for r in self._regions:
            t = getattr(self, r.name)
            hit = Signal(name=f"hit_{r.name}")
            # Aligned power-of-two regions: compare only the high address bits.
            m.d.comb += hit.eq(bus.adr[r.addr_width:] == (r.base >> r.addr_width))
            hits.append(hit)
            m.d.comb += [
                t.cyc.eq(bus.cyc & hit),
                t.stb.eq(bus.stb),
                t.we.eq(bus.we),
                t.sel.eq(bus.sel),
                t.adr.eq(bus.adr[:r.addr_width]),
                t.dat_w.eq(bus.dat_w),
            ]
            with m.If(hit):
                m.d.comb += [
                    bus.dat_r.eq(t.dat_r),
                    bus.ack.eq(t.ack),
                    bus.err.eq(t.err),
                ]

        # No region: end the transfer with a one-cycle err in the cycle after the request.
        miss = Signal()
        err_r = Signal()
        m.d.comb += miss.eq(~Cat(*hits).any() if hits else Const(1))
        m.d.sync += err_r.eq(bus.cyc & bus.stb & miss & ~err_r)
        with m.If(miss):
            m.d.comb += bus.err.eq(err_r)
        return m


class SRAM(wiring.Component):
    """Main memory: a block RAM as a Wishbone target.

    Every transfer takes three cycles: the request is seen in cycle 0, ``ack`` is high in cycle 2
    (read data from the synchronous read port through a register with nothing before it, so the
    RAM maps to DP16KD block RAM on ECP5 and the register to its output register: the 5.8 ns
    read data, then the route from 32 block RAMs across the die to the bus, would not fit one
    cycle in the 64x32 SoC; a write is performed at the end of cycle 1, with byte enables, from
    registers). An initiator that keeps ``stb`` high with a new address right after ``ack`` gets
    one word every three cycles. ``err`` is never raised.

    Parameters
    ----------
    words : int
        Number of 32-bit words, a power of two.
    init : iterable of int, optional
        Initial contents (the rest is 0).
    data_width : int
        Word width (32 in the accelerator).

    Members
    -------
    bus : In(Signature(log2(words), data_width))
        The target port.
    data : MemoryData
        The memory contents; tests read and write rows with ``ctx.get(sram.data[i])``.
    """
    def __init__(self, words, init=None, *, data_width=32):
        if not isinstance(words, int) or isinstance(words, bool) or words < 1 or words & (words - 1):
            raise ValueError(f"words must be a power of two, not {words!r}")
        _check_widths(0, data_width)
        init = [] if init is None else [int(v) for v in init]
        if len(init) > words:
            raise ValueError(f"init has {len(init)} words, more than words={words}")
        self._words = words
        self._data_width = data_width
        self.data = MemoryData(shape=data_width, depth=words, init=init)
        super().__init__({"bus": In(Signature(words.bit_length() - 1, data_width))})

    @property
    def words(self):
        return self._words

    def elaborate(self, platform):
        m = Module()
        # Only cycle 1 writes, and the word read in it is never used (no request is accepted in
        # cycle 1): no used read collides with a write (NO_COLLISIONS: no soft old-word
        # emulation after the block RAMs).
        m.submodules.mem = mem = Memory(data=self.data, attrs=NO_COLLISIONS)
        wp = mem.write_port(granularity=8)
        rp = mem.read_port()
        bus = self.bus

        pend = Signal()         # cycle 1 of a transfer
        ack = Signal()          # cycle 2
        req = Signal()
        # A request is new while none is being served; cycles 1 and 2 are not a new request, so a
        # write is performed exactly once.
        m.d.comb += req.eq(bus.cyc & bus.stb & ~pend & ~ack)
        m.d.sync += [pend.eq(req), ack.eq(pend)]
        # The write lands in cycle 1, from registers: the request's decode (address -> stb)
        # straight into the write enables of every block RAM would be too long a path. No
        # request is accepted in cycles 1 and 2, so a read that follows sees the write.
        rd_q = Signal.like(bus.dat_r, reset_less=True)
        m.d.sync += rd_q.eq(rp.data)
        w_addr = Signal.like(bus.adr)
        w_data = Signal.like(bus.dat_w)
        w_en = Signal.like(bus.sel)
        m.d.sync += [w_addr.eq(bus.adr), w_data.eq(bus.dat_w),
                     w_en.eq(bus.sel & (req & bus.we).replicate(len(bus.sel)))]
        m.d.comb += [
            wp.addr.eq(w_addr),
            wp.data.eq(w_data),
            wp.en.eq(w_en),
            rp.addr.eq(bus.adr),
            # The read port reads every cycle, and its data is registered every cycle: the ack
            # cycle shows the word read in the request cycle whatever happens after it (an enable
            # from the request decode reached the 32 block RAMs' clock enables too late).
            rp.en.eq(1),
            bus.dat_r.eq(rd_q),
            bus.ack.eq(ack),
        ]
        return m

