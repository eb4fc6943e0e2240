"""The layer engine: buffers, set-up multiplier, descriptor checks, address generator, MAC array,
output unit and embedding unit, under one control FSM.

It runs one EMBED or CONV descriptor (contract/isa.py) per ``start`` pulse over the buffers of
docs/ARCHITECTURE.md 3.1, which the DMA fills and drains through the ``local`` port (3.2).

A CONV layer: the set-up multiplier computes the descriptor's products (accel/setup_multiplier.py),
the descriptor checks judge them (accel/descriptor_check.py), then the address generator
(accel/address_generator.py) walks the layer, one word-set per cycle in steady state, reading
the weights and the source code bank (accel/engine_buffers.py); the MAC array
(accel/mac_array.py) accumulates and the output unit (accel/output.py: residual, thresholds,
pool, pack, sum) writes the destination bank. An EMBED layer hands the pixel stream to the
embedding unit (accel/embedding.py), which writes the destination bank.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from contract import isa
from contract.errors import ErrorCode
from contract.config import AccelConfig
from .localbus import LocalBusSignature
from .mac_array import MACArray
from .synthesis import KEEP_COPY
from .output import OutputUnit, OUT_TAG_LAYOUT
from .embedding import EmbeddingUnit
from .engine_buffers import EngineBuffers, WEIGHT_GROUP_LANES, ceil_div
from .setup_multiplier import SetupMultiplier
from .descriptor_check import DescriptorCheck
from .address_generator import AddressGenerator, ISSUE_LATENCY


__all__ = ["LayerEngine", "ERR_BAD_OPCODE", "ERR_BAD_DESCRIPTOR"]


ERR_BAD_OPCODE = int(ErrorCode.BAD_OPCODE)
ERR_BAD_DESCRIPTOR = int(ErrorCode.BAD_DESCRIPTOR)


class LayerEngine(wiring.Component):
    """One layer at a time: EMBED (image -> codes) or CONV (codes -> codes/ints).

    Parameters
    ----------
    config : AccelConfig
    wbuf_group_lanes : int
        Weight-buffer lanes (32-bit block-RAM columns) per copy of the buffer's address registers
        (the address generator's weight read address, the local bus's write decode). One register
        driving the address pins of all the buffer's block RAMs, spread over the die, limits the
        clock.

    Members
    -------
    desc : ``In(isa.DESCRIPTOR_LAYOUT)``
        The descriptor, held stable from ``start`` to ``done``.
    start : ``In(1)``
        Pulse (while not ``busy``) to run ``desc``; ``op`` must be EMBED or CONV.
    busy : ``Out(1)``
        High from the cycle after ``start`` until the cycle after ``done``.
    done : ``Out(1)``
        One-cycle pulse once every buffer write of the layer has landed (also after an error).
    error : ``Out(4)``
        0, 1 (op not EMBED/CONV) or 5 (a descriptor field out of range); valid with ``done``,
        held until the next ``start``.
    pixels : ``In(stream.Signature(32))``
        EMBED input: ``ceil(h_in*w_in*emb_c/4)`` words of HWC bytes.
    local : ``In(LocalBusSignature)``
        Buffer access for the DMA: writes land two cycles after ``w_en``, ``r_data`` is valid
        ``READ_LATENCY`` (6) cycles after ``r_en`` (0 in other cycles). Use it only while the
        engine is not ``busy`` (the engine owns the memory ports then). Weights, thresholds and
        the embedding table are write-only (read 0).
    mac_busy : ``Out(1)``
        High in every cycle the MAC array accepts a word-set.
    """

    def __init__(self, config, *, wbuf_group_lanes=WEIGHT_GROUP_LANES):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"LayerEngine config must be an AccelConfig, not {config!r}")
        if not isinstance(wbuf_group_lanes, int) or isinstance(wbuf_group_lanes, bool):
            raise TypeError(f"LayerEngine wbuf_group_lanes must be an integer, not "
                            f"{wbuf_group_lanes!r}")
        if wbuf_group_lanes < 1:
            raise ValueError(f"LayerEngine wbuf_group_lanes must be >= 1, not {wbuf_group_lanes}")
        if config.res_depth > (1 << 16):
            raise ValueError(f"LayerEngine needs res_depth <= 65536, not {config.res_depth}")
        if config.bank_depth > (1 << 20):
            raise ValueError(f"LayerEngine needs bank_depth <= 2**20, not {config.bank_depth}")
        self.config = config
        # The weight buffer in column groups of wbuf_group_lanes lanes (block-RAM columns), each
        # with its own copies of the address registers (one group if the lanes do not divide).
        weight_lanes = ceil_div(config.weight_word_bits, 32)
        weight_groups = (weight_lanes // wbuf_group_lanes
                         if weight_lanes % wbuf_group_lanes == 0 else 1)
        self.buffers = EngineBuffers(config, weight_groups=weight_groups)
        self.wbuf = self.buffers.weight_memory
        self.setup = SetupMultiplier()
        self.check = DescriptorCheck(config)
        self.address_generator = AddressGenerator(config, weight_groups=weight_groups)
        # room_lead: a word-set reaches the array a cycle after the generator's word_set (the
        # stage-2 register) and ISSUE_LATENCY cycles after the generator's decision
        self.mac = MACArray(config.p_o, config.p_i, config.a_planes, config.acc_bits,
                            tag_bits=OUT_TAG_LAYOUT.size, room_lead=ISSUE_LATENCY + 1)
        self.out_unit = OutputUnit(config)
        self.emb = EmbeddingUnit(config)
        super().__init__({
            "desc": In(isa.DESCRIPTOR_LAYOUT),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(4),
            "pixels": In(stream.Signature(32)),
            "local": In(LocalBusSignature),
            "mac_busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffers = self.buffers
        m.submodules.setup = self.setup
        m.submodules.check = self.check
        m.submodules.address_generator = self.address_generator
        m.submodules.mac = self.mac
        m.submodules.out_unit = self.out_unit
        m.submodules.emb = self.emb
        wiring.connect(m, wiring.flipped(self.local), self.buffers.local)
        # the buffer ports' owners: the layer that runs (set and cleared by the control FSM)
        run = dict(conv=Signal(), embed=Signal(), source_bank=Signal(2))
        self._connect_setup(m)
        self._connect_compute(m, run)
        self._connect_buffer_writes(m, run)
        self._connect_embedding(m)
        self._control(m, run)
        return m

    def _connect_setup(self, m):
        """The descriptor and the products to the multiplier, the checks and the generator."""
        setup, check, generator = self.setup, self.check, self.address_generator
        m.d.comb += [setup.desc.eq(self.desc), check.desc.eq(self.desc),
                     generator.desc.eq(self.desc)]
        m.d.comb += [getattr(check, name).eq(getattr(setup, name)) for name in check.PRODUCTS]
        m.d.comb += [getattr(generator, name).eq(getattr(setup, name))
                     for name, _ in generator.PRODUCTS]

    def _connect_compute(self, m, run):
        """Address generator -> buffers -> stage 2 -> MAC array -> output unit."""
        cfg, buffers, generator, mac, ou = (self.config, self.buffers, self.address_generator,
                                            self.mac, self.out_unit)
        # The address generator issues a word-set only when the MAC array will take it when it
        # arrives (``room``): the read stages never stall, so the weight and code-bank reads need
        # no read enable (an enable would make Yosys hold each block RAM's address in a register
        # of its own behind a multiplexer on this late signal) and have no clock enable.
        m.d.comb += generator.advance.eq(mac.room)
        for k in range(cfg.n_code_banks):
            m.d.comb += getattr(buffers, f"bank{k}").r_addr[0].eq(generator.code_addr[k])
        m.d.comb += [buffers.weights.r_addr.eq(generator.weight_addr), buffers.weights.r_en.eq(1)]
        # the source bank's registered read data
        source_codes = Signal(cfg.code_word_bits)
        for k in range(cfg.n_code_banks):
            with m.If(run["source_bank"] == k):
                bank_codes = getattr(buffers, f"bank{k}").r_data
                m.d.comb += source_codes.eq(bank_codes[:cfg.code_word_bits])
        # Stage 2: the weights' read data and the source bank's registered codes (and the side
        # band) registered before the array, so that the block RAMs' clock-to-output, the
        # source-bank multiplexer and the route to the array are not one path. No enable, like
        # the read stages.
        word_set = generator.word_set
        stage2_valid = Signal()
        stage2 = Signal(mac.inp.payload.shape(), name="s2", reset_less=True)
        m.d.sync += [
            stage2_valid.eq(word_set.valid),
            stage2.weights.eq(buffers.weights.r_data),
            stage2.acts.eq(Mux(word_set.zero, 0, source_codes)),
            stage2.shift.eq(word_set.shift),
            stage2.first.eq(word_set.first),
            stage2.last.eq(word_set.last),
            stage2.tag.eq(word_set.tag),
        ]
        m.d.comb += [
            mac.inp.valid.eq(stage2_valid),
            mac.inp.payload.eq(stage2),
            self.mac_busy.eq(mac.inp.valid & mac.inp.ready),
            ou.inp.valid.eq(mac.out.valid),
            mac.out.ready.eq(ou.inp.ready),
            ou.inp.payload.as_value().eq(mac.out.payload.as_value()),
        ]
        for name in ("res_in", "res_out", "thr_out", "pool", "sum", "out_bits", "res_base",
                     "thr_base", "n_cig_out"):
            m.d.comb += getattr(ou, name).eq(getattr(self.desc, name))
        m.d.comb += [buffers.thresholds.r_addr[0].eq(ou.thr_raddr),
                     buffers.thresholds.r_en.eq(ou.thr_ren),
                     ou.thr_rdata.eq(buffers.thresholds.r_data)]
        m.d.comb += [buffers.residual.r_addr[0].eq(ou.res_raddr),
                     ou.res_rdata.eq(buffers.residual.r_data),
                     buffers.residual.w_addr.eq(ou.res_waddr),
                     buffers.residual.w_data.eq(ou.res_wdata),
                     buffers.residual.w_en.eq(ou.res_wen & run["conv"])]

    def _connect_buffer_writes(self, m, run):
        """The destination bank's writes: the output unit's (CONV) or the embedding unit's.

        The write is registered once per bank, after the choice of its source, so that the
        routes to each bank's block RAMs start at a flip-flop next to them: a code word lands
        one cycle after its unit wrote it. Both units signal their end later than that (the
        output unit's ``finished`` and the embedding unit's ``busy`` fall at least a cycle after
        their last write).
        """
        ou, emb, destination = self.out_unit, self.emb, self.desc.dst_bank
        for k in range(self.config.n_code_banks):
            port = getattr(self.buffers, f"bank{k}")
            w_addr = Signal.like(port.w_addr, name=f"bank{k}_eng_waddr_q", attrs=KEEP_COPY)
            w_data = Signal.like(port.w_data, name=f"bank{k}_eng_wdata_q", attrs=KEEP_COPY,
                                 reset_less=True)
            w_en = Signal(name=f"bank{k}_eng_wen_q", attrs=KEEP_COPY)
            with m.If(run["embed"]):
                m.d.sync += [w_addr.eq(emb.out_addr), w_data.eq(emb.out.payload),
                             w_en.eq(emb.out.valid & (destination == k))]
            with m.Else():
                m.d.sync += [w_addr.eq(ou.code_waddr), w_data.eq(ou.code_wdata),
                             w_en.eq(run["conv"] & ou.code_wen & (destination == k))]
            m.d.comb += [port.w_addr.eq(w_addr), port.w_data.eq(w_data), port.w_en.eq(w_en)]

    def _connect_embedding(self, m):
        """The embedding unit's pixel stream, table writes and parameters."""
        emb, d, setup = self.emb, self.desc, self.setup
        m.d.comb += emb.out.ready.eq(1)
        m.d.comb += [emb.tw_addr.eq(self.buffers.table.addr),
                     emb.tw_data.eq(self.buffers.table.data),
                     emb.tw_en.eq(self.buffers.table.en)]
        m.d.comb += [emb.pixels.valid.eq(self.pixels.valid),
                     emb.pixels.payload.eq(self.pixels.payload),
                     self.pixels.ready.eq(emb.pixels.ready),
                     emb.n_pix.eq(setup.pixels), emb.n_words.eq((setup.image_bytes + 3) >> 2),
                     emb.emb_c.eq(d.emb_c), emb.emb_d.eq(d.emb_d), emb.emb_q.eq(d.emb_q),
                     emb.raw.eq(d.raw), emb.nsub.eq(d.nsub),
                     emb.win_k.eq(d.k), emb.stride.eq(d.stride), emb.pad.eq(d.pad),
                     emb.h_in.eq(d.h_in), emb.w_in.eq(d.w_in), emb.h_out.eq(d.h_out),
                     emb.w_out.eq(d.w_out)]

    def _buffer_owners(self, m):
        """A register of its own per readable buffer that says the engine owns its read port,
        set and cleared with the CONV run (one register's fan-out to every buffer's address
        multiplexer would be a long path); kept apart in synthesis."""
        owners = {}
        for port_name, memory in self.buffers.by_id.values():
            port = getattr(self.buffers, port_name)
            if hasattr(port, "own"):
                owners[port_name] = Signal(name=f"{memory.name}_eng_own", attrs=KEEP_COPY)
                m.d.comb += port.own.eq(owners[port_name])
        return owners

    def _control(self, m, run):
        """The control FSM: set-up, checks, then the CONV or EMBED run."""
        d, setup, ou = self.desc, self.setup, self.out_unit
        control = SimpleNamespace(run=run, owners=self._buffer_owners(m), error=Signal(4),
                                  bad=Signal(), ou_start=Signal())
        m.d.comb += self.error.eq(control.error)
        # The output unit's start strobe comes from a flip-flop (it resets its group state, a
        # wide fan-out); it arrives one cycle into CONV_RUN, long before the first accumulators.
        m.d.sync += control.ou_start.eq(0)
        m.d.comb += ou.start.eq(control.ou_start)
        # ``start`` is registered before the FSM acts on it, so that the sequencer's dispatch
        # decision and the opcode decode are not one path. The cycle is not lost: while idle,
        # the set-up multiplier loads the first product's operands every cycle from the
        # descriptor (valid in the start cycle and held until done).
        start_q = Signal()
        m.d.sync += start_q.eq(self.start)
        with m.FSM(name="engine") as fsm:
            with m.State("IDLE"):
                m.d.comb += setup.start.eq(start_q)
                with m.If(start_q):
                    m.d.sync += control.error.eq(0)
                    with m.If(d.op == isa.Op.CONV):
                        m.next = "CONV_SETUP"
                    with m.Elif(d.op == isa.Op.EMBED):
                        m.next = "EMBED_SETUP"
                    with m.Else():
                        m.d.sync += control.error.eq(ERR_BAD_OPCODE)
                        m.next = "DONE"
            self._conv_states(m, control)
            self._embed_states(m, control)
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))

    def _conv_states(self, m, control):
        """CONV: wait for the products, check, then run until the output unit has finished."""
        d, generator, run, owners = self.desc, self.address_generator, control.run, control.owners
        conv_faults = Signal.like(self.check.conv_faults)
        with m.State("CONV_SETUP"):
            with m.If(self.setup.done):
                m.next = "CONV_VALIDATE"
        # The checks (a wide OR of comparisons, several with carry chains) are registered in two
        # steps (each check; their OR) before the FSM acts on the verdict, which decides the
        # start strobes that reset the output unit's and the walker's registers.
        with m.State("CONV_VALIDATE"):
            m.d.sync += conv_faults.eq(self.check.conv_faults)
            m.d.comb += generator.latch.eq(1)
            m.next = "CONV_VALIDATE2"
        with m.State("CONV_VALIDATE2"):
            m.d.sync += control.bad.eq(conv_faults != 0)
            m.next = "CONV_CHECK"
        with m.State("CONV_CHECK"):
            with m.If(control.bad):
                m.d.sync += control.error.eq(ERR_BAD_DESCRIPTOR)
                m.next = "DONE"
            with m.Else():
                m.d.comb += generator.begin.eq(1)
                m.d.sync += [run["conv"].eq(1), run["source_bank"].eq(d.src_bank),
                             owners["residual"].eq(1), control.ou_start.eq(1),
                             *(owners[f"bank{k}"].eq(d.src_bank == k)
                               for k in range(self.config.n_code_banks))]
                m.next = "CONV_RUN"
        with m.State("CONV_RUN"):
            with m.If(self.out_unit.finished):
                m.d.sync += [run["conv"].eq(0), *(owner.eq(0) for owner in owners.values())]
                m.next = "DONE"

    def _embed_states(self, m, control):
        """EMBED: wait for the products, check, then run until the embedding unit is idle."""
        emb = self.emb
        with m.State("EMBED_SETUP"):
            with m.If(self.setup.done):
                m.next = "EMBED_VALIDATE"
        with m.State("EMBED_VALIDATE"):
            m.d.sync += control.bad.eq(self.check.embed_fault)
            m.next = "EMBED_CHECK"
        with m.State("EMBED_CHECK"):
            with m.If(control.bad):
                m.d.sync += control.error.eq(ERR_BAD_DESCRIPTOR)
                m.next = "DONE"
            with m.Else():
                m.d.comb += emb.start.eq(1)
                m.d.sync += control.run["embed"].eq(1)
                m.next = "EMBED_WAIT"
        with m.State("EMBED_WAIT"):
            m.next = "EMBED_RUN"
        with m.State("EMBED_RUN"):
            with m.If(~emb.busy):
                m.d.sync += control.run["embed"].eq(0)
                m.next = "DONE"
