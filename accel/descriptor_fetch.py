"""The sequencer's descriptor fetch: reads a descriptor over Wishbone, and the next one ahead."""

from amaranth.hdl import Module, Signal, Cat, Array
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract import isa
from . import wishbone


__all__ = ["DescriptorFetch"]


class DescriptorFetch(wiring.Component):
    """Descriptor registers filled by Wishbone reads, and a second set filled ahead of time.

    The sequencer loads the first word address (``begin_fetch``), then holds ``fetch`` high while
    the words are read, one Wishbone read each, until ``fetched`` (the last word acknowledged).
    The words land in ``desc`` one cycle after their acknowledgement: every word is written from
    registers (the bus's read data, sampled every cycle, and a one-hot of the word to write), so
    that the bus response does not drive the enables of the 256 descriptor flip-flops.

    While a CONV runs, the next descriptor is read into a second register set (the prefetch): the
    sequencer loads its address (``begin_prefetch``) and holds ``prefetch_enable`` while it
    waits. The prefetch starts only for a CONV whose next descriptor lies inside the window (else
    the normal fetch reports the window error at the right descriptor) and while no DMA transfer
    is outstanding (an asynchronous STORE could be writing main memory). Once started it runs to
    its last word or a bus error, so that no request is left outstanding when the sequencer moves
    on; a bus error leaves the descriptor to the normal fetch. ``take_prefetched`` copies the
    second set into ``desc``.

    Members
    -------
    bus : Out(wishbone.Signature(30, 32))
        Initiator for the reads.
    desc : Out(isa.DESCRIPTOR_LAYOUT)
        The current descriptor.
    addr, next_addr : In(30)
        Word addresses of the current and of the next descriptor.
    next_in_window : In(1)
        The next descriptor lies inside the main-memory window.
    dma_pending : In(1)
        A DMA transfer is outstanding, or has failed (the run is about to end): no prefetch
        starts.
    begin_fetch, fetch : In(1)
        Strobe: read the descriptor at ``addr`` from its first word; high while reading it (the
        strobes and ``fetch`` / ``prefetch_enable`` come in different cycles).
    fetched : Out(1)
        The last word of the fetch is acknowledged in this cycle (it is in ``desc`` two cycles
        later).
    error : Out(1)
        The read presented in this cycle ends in a bus error.
    begin_prefetch, prefetch_enable : In(1)
        Strobe: the next prefetch reads from ``next_addr``; high while a prefetch may run.
    prefetching : Out(1)
        A prefetch read is requested in this cycle (whether or not ``prefetch_enable`` is high).
    prefetched : Out(1)
        The next descriptor is complete in the second register set.
    restart : In(1)
        Strobe: a new descriptor begins; the fetch and the prefetch start from their first word.
    take_prefetched : In(1)
        Strobe: ``desc`` takes the prefetched descriptor.
    """

    bus: Out(wishbone.Signature(addr_width=30, data_width=32))
    desc: Out(isa.DESCRIPTOR_LAYOUT)
    addr: In(30)
    next_addr: In(30)
    next_in_window: In(1)
    dma_pending: In(1)
    begin_fetch: In(1)
    fetch: In(1)
    fetched: Out(1)
    error: Out(1)
    begin_prefetch: In(1)
    prefetch_enable: In(1)
    prefetching: Out(1)
    prefetched: Out(1)
    restart: In(1)
    take_prefetched: In(1)

    def elaborate(self, platform):
        m = Module()
        n_words = isa.DESCRIPTOR_WORDS

        words = Array(Signal(32, name=f"desc_word{i}") for i in range(n_words))
        m.d.comb += self.desc.as_value().eq(Cat(*words))
        next_words = Array(Signal(32, name=f"next_word{i}") for i in range(n_words))

        read_data = Signal(32)                 # the bus's read data, registered every cycle
        m.d.sync += read_data.eq(self.bus.dat_r)
        word_written = Signal(n_words)         # one-hot: the fetched word written now
        next_word_written = Signal(n_words)    # one-hot: the prefetched word written now
        m.d.sync += [word_written.eq(0), next_word_written.eq(0)]
        for i in range(n_words):
            with m.If(word_written[i]):
                m.d.sync += words[i].eq(read_data)
            with m.If(next_word_written[i]):
                m.d.sync += next_words[i].eq(read_data)
        with m.If(self.take_prefetched):
            m.d.sync += [w.eq(n) for w, n in zip(words, next_words)]

        # The bus address is a register: an adder in front of it would put a carry chain before
        # the decoder, the arbiter and every target's acknowledgement.
        read_addr = Signal.like(self.bus.adr)
        word_index = Signal(range(n_words))            # of the fetch
        next_word_index = Signal(range(n_words + 1))   # of the prefetch: words read so far
        prefetch_failed = Signal()                     # a bus error: the normal fetch reads it

        # Whether the prefetch may start is a register, from the current descriptor (stable once
        # it is dispatched): its comparators would otherwise sit in front of the bus request.
        conv_next_in_window = Signal()
        m.d.sync += conv_next_in_window.eq((self.desc.op == isa.Op.CONV) & self.next_in_window)
        prefetch_allowed = Signal()
        m.d.comb += prefetch_allowed.eq(conv_next_in_window & ~self.dma_pending & ~prefetch_failed)
        prefetch_started = Signal()
        m.d.comb += prefetch_started.eq(next_word_index != 0)
        m.d.comb += [
            self.prefetched.eq(next_word_index == n_words),
            self.prefetching.eq((prefetch_allowed | (prefetch_started & ~prefetch_failed))
                                & ~self.prefetched),
            self.fetched.eq(self.bus.ack & (word_index == n_words - 1)),
            self.error.eq(self.bus.err),
        ]

        read = [self.bus.cyc.eq(1), self.bus.stb.eq(1), self.bus.we.eq(0),
                self.bus.sel.eq(0b1111), self.bus.adr.eq(read_addr)]
        fetch_ack = Signal()       # a fetched word is acknowledged
        prefetch_ack = Signal()    # a prefetched word is acknowledged
        prefetch_request = Signal()
        m.d.comb += [
            prefetch_request.eq(self.prefetch_enable & self.prefetching),
            fetch_ack.eq(self.fetch & ~self.bus.err & self.bus.ack),
            prefetch_ack.eq(prefetch_request & ~self.bus.err & self.bus.ack),
        ]
        # The strobes come in different cycles; as one if/elif chain, Yosys turns them into the
        # address flip-flops' clock enable.
        with m.If(self.begin_fetch):
            m.d.sync += read_addr.eq(self.addr)
        with m.Elif(self.begin_prefetch):
            m.d.sync += read_addr.eq(self.next_addr)
        with m.Elif(fetch_ack | prefetch_ack):
            m.d.sync += read_addr.eq(read_addr + 1)

        with m.If(self.fetch):
            m.d.comb += read
            with m.If(fetch_ack):
                m.d.sync += word_written.eq(1 << word_index)
                with m.If(word_index != n_words - 1):
                    m.d.sync += word_index.eq(word_index + 1)

        with m.If(prefetch_request):
            m.d.comb += read
            with m.If(self.bus.err):
                m.d.sync += prefetch_failed.eq(1)
            with m.Elif(self.bus.ack):
                m.d.sync += [next_word_written.eq(1 << next_word_index[:len(word_index)]),
                             next_word_index.eq(next_word_index + 1)]

        with m.If(self.restart):
            m.d.sync += [word_index.eq(0), next_word_index.eq(0), prefetch_failed.eq(0)]
        return m
