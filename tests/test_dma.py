"""The DMA controller against Python models of main memory (a Wishbone target with random
acknowledge delays and injected ``err``), of the local buffers and of a stalling pixel consumer.

After every command the whole main memory and every local buffer are compared with a reference
computed from the command alone, so a write anywhere else (outside the window, outside the local
range, after an error) fails the test.
"""

import random

from hypothesis import given, settings, strategies as st, HealthCheck

from amaranth.hdl import Module
from amaranth.lib import wiring

from accel import wishbone
from contract.config import TINY, LOCAL_LANE_BITS, WRITE_ONLY_BUFFERS
from accel.dma import DMA, DmaCommand, DmaKind
from contract.errors import ErrorCode
from accel.localbus import READ_LATENCY

from test_wishbone import run


MEM_WORDS = 512          # initialised words; the model answers every 30-bit address


class Mem(dict):
    """Sparse main memory: unwritten words read a fixed hash of their address."""
    def __missing__(self, a):
        return (a * 2654435761 + 12345) & 0xFFFF_FFFF

    def copy(self):
        return Mem(self)
LOAD, STORE, STREAM = int(DmaKind.LOAD.value), int(DmaKind.STORE.value), int(DmaKind.STREAM.value)


def buffer_lanes(cfg):
    return {b: cfg.depth(b) * cfg.lanes(b) for b in range(4 + cfg.n_code_banks)}


def beat_addrs(c):
    return [c["mem_addr"] + r * c["mem_stride"] + i for r in range(c["rows"]) for i in range(c["count"])]


def reference(c, wbase, wlimit, mem, local, lanes, err_beat):
    """Expected (error, mem, local, pixels, n_bus_transfers) of command ``c``."""
    mem = mem.copy()
    local = {b: list(v) for b, v in local.items()}
    kind, count, rows = c["kind"], c["count"], c["rows"]
    if kind == 3:
        return ErrorCode.BAD_OPCODE, mem, local, [], 0
    if count == 0 or rows == 0:
        return ErrorCode.OK, mem, local, [], 0
    end = c["mem_addr"] + (rows - 1) * c["mem_stride"] + count
    if not (c["mem_addr"] >= wbase and end <= wlimit and end <= 1 << 30):
        return ErrorCode.WINDOW, mem, local, [], 0
    buf, lane = c["local_addr"] >> LOCAL_LANE_BITS, c["local_addr"] & ((1 << LOCAL_LANE_BITS) - 1)
    if kind != STREAM and (buf not in lanes or lane + rows * count > lanes[buf]
                           or (kind == STORE and buf in WRITE_ONLY_BUFFERS)):
        return ErrorCode.LOCAL_RANGE, mem, local, [], 0
    addrs = beat_addrs(c)
    n_ok = len(addrs) if err_beat is None else min(err_beat, len(addrs))
    pixels = []
    for k in range(n_ok):
        a = addrs[k]
        if kind == LOAD:
            local[buf][lane + k] = mem[a]
        elif kind == STORE:
            mem[a] = local[buf][lane + k]
        else:
            pixels.append(mem[a])
    code = ErrorCode.OK if n_ok == len(addrs) else ErrorCode.BUS_ERROR
    return code, mem, local, pixels, min(len(addrs), n_ok + 1)


def random_command(rng, lanes, wbase, wlimit):
    kind = rng.choice([LOAD, LOAD, STORE, STORE, STREAM, STREAM, 3])
    count = rng.choice([0, 1, 2, 3, 5, 8, rng.randrange(1, 20)])
    rows = rng.choice([0, 1, 1, 2, 3, 4])
    stride = rng.choice([0, 1, count, count + 1, rng.randrange(0, 40)])
    if rng.random() < 0.05:
        count = rng.choice([0xFFFF, 0x8000])
    if rng.random() < 0.05:
        stride = 0xFFFF
    extent = max(rows - 1, 0) * stride + count
    r = rng.random()
    if r < 0.1:
        mem_addr = wlimit - extent + rng.choice([0, 1])             # exactly at the limit
    elif r < 0.6 and wlimit - wbase >= extent:
        mem_addr = rng.randrange(wbase, wlimit - extent + 1)          # fits in the window
    elif r < 0.8:
        mem_addr = rng.randrange(wbase, max(wbase + 1, wlimit))       # inside, may overrun
    else:
        mem_addr = rng.choice([0, wbase - 1 if wbase else 0, wlimit, wlimit - 1, rng.randrange(MEM_WORDS),
                               0xFFFF_FFFF - rng.randrange(4), (1 << 30) - 1])
    if rng.random() < 0.1:
        buf = rng.choice([7, 8, 15])            # no such buffer in TINY
    else:
        buf = rng.choice(sorted(lanes))
    size = lanes.get(buf, 1024)
    r = rng.random()
    if r < 0.5 and size >= rows * count:
        lane = rng.randrange(0, size - rows * count + 1)              # fits in the buffer
    elif r < 0.65:
        lane = max(0, size - rows * count + rng.choice([0, 1]))     # exactly at the boundary
    elif r < 0.75:
        lane = rng.randrange(0, size)
    else:
        lane = max(0, size - rng.randrange(0, 40))           # near the end: range errors
    if rng.random() < 0.03:
        lane = (1 << LOCAL_LANE_BITS) - 1
    return {"kind": kind, "mem_addr": mem_addr & 0xFFFF_FFFF, "local_addr": buf << LOCAL_LANE_BITS | lane,
            "count": count, "rows": rows, "mem_stride": stride}


class Env:
    """Main memory, local buffers and pixel sink, stepped once per cycle by the testbench."""

    def __init__(self, dut, rng, lanes, p_stall, max_delay):
        self.dut = dut
        self.rng = rng
        self.lanes = lanes
        self.p_stall = p_stall
        self.max_delay = max_delay
        self.mem = Mem({a: rng.getrandbits(32) for a in range(MEM_WORDS)})
        self.local = {b: [rng.getrandbits(32) for _ in range(n)] for b, n in lanes.items()}
        self.req = None              # (adr, we, dat_w, remaining delay, err?)
        self.r_pipe = [None] * (READ_LATENCY - 1)   # local reads in flight (None: no read)
        self.window = (0, 0)
        self.err_beat = None
        self.beats = 0
        self.pixels = []
        self.local_accesses = 0
        self.bad = []
        self.in_cycle = 0            # transfers since cyc was last low (burst limit 16)

    async def step(self, ctx):
        """Drive the DUT's inputs for this cycle, observe it, advance one clock edge.

        Returns (cmd accepted, done, error) as seen in this cycle.
        """
        dut, rng = self.dut, self.rng
        bus = dut.bus
        ctx.set(dut.pixels.ready, int(rng.random() >= self.p_stall))
        ack = err = 0
        dat_r = rng.getrandbits(32)           # garbage unless acknowledged
        if not ctx.get(bus.cyc):
            self.in_cycle = 0
        if ctx.get(bus.cyc) and ctx.get(bus.stb):
            adr, we, dat_w, sel = ctx.get(bus.adr), ctx.get(bus.we), ctx.get(bus.dat_w), ctx.get(bus.sel)
            if self.req is None:
                lo, hi = self.window
                if not lo <= adr < hi:
                    self.bad.append(f"bus access at {adr:#x} outside window {self.window}")
                if sel != 0xF:
                    self.bad.append(f"sel {sel:#x}")
                self.in_cycle += 1
                if self.in_cycle > 16:
                    self.bad.append("more than 16 transfers without releasing cyc")
                failing = self.err_beat is not None and self.beats == self.err_beat
                self.beats += 1
                self.req = [adr, we, dat_w, rng.randrange(self.max_delay + 1), failing]
            elif self.req[:3] != [adr, we, dat_w]:
                self.bad.append("request changed while waiting for ack")
            if self.req[3] == 0:
                a = self.req[0]
                if self.req[4]:
                    err = 1
                else:
                    ack = 1
                    if we:
                        self.mem[a] = dat_w
                    else:
                        dat_r = self.mem[a]
                self.req = None
            else:
                self.req[3] -= 1
        elif self.req is not None:
            self.bad.append("initiator dropped a request before its ack")
            self.req = None
        ctx.set(bus.ack, ack)
        ctx.set(bus.err, err)
        ctx.set(bus.dat_r, dat_r)

        # local bus (after ack is set: the DUT may react combinationally)
        loc = dut.local
        r_next = None
        if ctx.get(loc.w_en) or ctx.get(loc.r_en):
            self.local_accesses += 1
            addr = ctx.get(loc.addr)
            buf, lane = addr >> LOCAL_LANE_BITS, addr & ((1 << LOCAL_LANE_BITS) - 1)
            ok = buf in self.lanes and lane < self.lanes[buf]
            if not ok:
                self.bad.append(f"local access at {addr:#x} outside every buffer")
            if ctx.get(loc.w_en) and ctx.get(loc.r_en):
                self.bad.append("w_en and r_en together")
            if ctx.get(loc.r_en) and buf in WRITE_ONLY_BUFFERS:
                self.bad.append(f"local read of write-only buffer {buf}")
            if ctx.get(loc.w_en):
                if ok:
                    self.local[buf][lane] = ctx.get(loc.w_data)
            else:
                r_next = self.local[buf][lane] if ok else 0
        if ctx.get(dut.pixels.valid) and ctx.get(dut.pixels.ready):
            self.pixels.append(ctx.get(dut.pixels.payload))
        accepted = ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready)
        done, error, busy = ctx.get(dut.done), ctx.get(dut.error), ctx.get(dut.busy)
        if ctx.get(dut.cmd.ready) == busy:
            self.bad.append("cmd.ready must be exactly ~busy")
        await ctx.tick()
        # r_data READ_LATENCY cycles after r_en; garbage in every other cycle
        self.r_pipe.append(r_next)
        r_data = self.r_pipe.pop(0)
        ctx.set(loc.r_data, r_data if r_data is not None else rng.getrandbits(32))
        return accepted, done, error


def run_commands(seed, n_cmds, p_stall, max_delay, p_err):
    rng = random.Random(seed)
    cfg = TINY
    dut = DMA(cfg)
    lanes = buffer_lanes(cfg)
    env = Env(dut, rng, lanes, p_stall, max_delay)
    stats = {"codes": set(), "words": 0}

    async def bench(ctx):
        for n in range(n_cmds):
            for _ in range(rng.randrange(3)):
                accepted, done, _ = await env.step(ctx)
                assert not accepted and not done
            if rng.random() < 0.1:
                # at the top of the 30-bit bus: the window may extend beyond it
                wbase = (1 << 30) - rng.randrange(1, 64)
                wlimit = rng.choice([1 << 30, (1 << 30) + 100, 0xFFFF_FFFF])
            else:
                wbase = rng.randrange(0, MEM_WORDS // 2)
                wlimit = rng.randrange(wbase, MEM_WORDS + 1)
            c = random_command(rng, lanes, wbase, wlimit)
            total = c["count"] * c["rows"]
            err_beat = rng.randrange(max(total, 1)) if rng.random() < p_err else None
            exp = reference(c, wbase, wlimit, env.mem, env.local, lanes, err_beat)
            env.window = (wbase, wlimit)
            env.err_beat, env.beats, env.pixels, env.local_accesses = err_beat, 0, [], 0
            ctx.set(dut.window_base, wbase)
            ctx.set(dut.window_limit, wlimit)
            ctx.set(dut.cmd.payload, DmaCommand.const(c))
            ctx.set(dut.cmd.valid, 1)
            limit = 40 + total * (max_delay + 2) * (4 if p_stall else 1) + 20 * total * p_stall
            cycles = 0
            while True:
                accepted, done, error = await env.step(ctx)
                cycles += 1
                if accepted:
                    ctx.set(dut.cmd.valid, 0)
                if done:
                    break
                assert cycles < limit, f"command {c} did not finish in {limit} cycles"
            assert not env.bad, env.bad
            code, mem, local, pixels, n_bus = exp
            desc = f"command {c} window [{wbase},{wlimit}) err_beat {err_beat}"
            assert error == code, f"{desc}: error {error}, expected {code!r}"
            assert env.beats == n_bus, f"{desc}: {env.beats} bus transfers, expected {n_bus}"
            assert env.mem == mem, f"{desc}: main memory differs"
            for b in lanes:
                assert env.local[b] == local[b], f"{desc}: local buffer {b} differs"
            # after a bus error too: every word read before it is delivered
            assert env.pixels == pixels, f"{desc}: pixels"
            if code in (ErrorCode.WINDOW, ErrorCode.LOCAL_RANGE, ErrorCode.BAD_OPCODE):
                assert env.local_accesses == 0
            # error is held until the next command
            for _ in range(2):
                _, done, error2 = await env.step(ctx)
                assert not done and error2 == error
            stats["codes"].add(int(code))
            stats.setdefault("hist", {}).setdefault(int(code), 0)
            stats["hist"][int(code)] += 1
            stats["words"] += total if code == ErrorCode.OK else 0

    run(dut, [bench], f"dma_{seed}")
    return stats


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_dma_random(seed):
    stats = run_commands(seed, 150, p_stall=0.3, max_delay=3, p_err=0.25)
    assert stats["words"] > 0


def test_dma_all_outcomes():
    """A longer fixed-seed run that must reach every outcome (so the checks above are exercised)."""
    stats = run_commands(12345, 150, p_stall=0.4, max_delay=2, p_err=0.2)
    assert {0, 1, 2, 3, 4} <= stats["codes"], stats["codes"]


def test_dma_no_delay_no_stall():
    """Combinational ack (0 delay) and an always-ready consumer: one word per cycle paths."""
    stats = run_commands(7, 40, p_stall=0.0, max_delay=0, p_err=0.1)
    assert stats["words"] > 0


class _System(wiring.Component):
    """DMA -> Arbiter (with an idle second initiator) -> Decoder -> SRAM: real bus timing."""
    def __init__(self):
        self.dma = DMA(TINY)
        self.arb = wishbone.Arbiter(2)
        self.dec = wishbone.Decoder([("mem", 0, 1024)])
        self.sram = wishbone.SRAM(1024, init=list(range(1000, 2024)))
        super().__init__({"other": wiring.In(wishbone.Signature())})

    def elaborate(self, platform):
        m = Module()
        for name in ("dma", "arb", "dec", "sram"):
            m.submodules[name] = getattr(self, name)
        wiring.connect(m, self.dma.bus, self.arb.initiators[0])
        wiring.connect(m, wiring.flipped(self.other), self.arb.initiators[1])
        wiring.connect(m, self.arb.bus, self.dec.bus)
        wiring.connect(m, self.dec.mem, self.sram.bus)
        return m


def test_dma_with_sram_throughput():
    """LOAD / STREAM / STORE through the real arbiter, decoder and SRAM: data exact, about two
    cycles per word, and a window error before any access."""
    top = _System()
    dut = top.dma
    local = {}
    timings = {}

    async def bench(ctx):
        ctx.set(dut.window_base, 0)
        ctx.set(dut.window_limit, 1024)
        ctx.set(dut.pixels.ready, 1)

        async def command(c):
            ctx.set(dut.cmd.payload, DmaCommand.const(c))
            ctx.set(dut.cmd.valid, 1)
            cycles, pixels = 0, []
            r_pipe = [None] * (READ_LATENCY - 1)
            while True:
                if ctx.get(dut.local.w_en):
                    local[ctx.get(dut.local.addr)] = ctx.get(dut.local.w_data)
                r = local.get(ctx.get(dut.local.addr), 0) if ctx.get(dut.local.r_en) else None
                if ctx.get(dut.pixels.valid):
                    pixels.append(ctx.get(dut.pixels.payload))
                done, error, ready = ctx.get(dut.done), ctx.get(dut.error), ctx.get(dut.cmd.ready)
                await ctx.tick()
                r_pipe.append(r)
                r = r_pipe.pop(0)
                ctx.set(dut.local.r_data, r if r is not None else 0)
                if ready:
                    ctx.set(dut.cmd.valid, 0)
                cycles += 1
                if done:
                    return error, cycles, pixels
                assert cycles < 1000

        base = 4 << LOCAL_LANE_BITS
        err, cyc, _ = await command({"kind": LOAD, "mem_addr": 10, "local_addr": base,
                                     "count": 20, "rows": 3, "mem_stride": 100})
        assert err == 0
        for r in range(3):
            for i in range(20):
                assert local[base + r * 20 + i] == 1000 + 10 + r * 100 + i
        timings["load"] = cyc
        err, cyc, pixels = await command({"kind": STREAM, "mem_addr": 500, "local_addr": 0,
                                          "count": 30, "rows": 2, "mem_stride": 40})
        assert err == 0
        assert pixels == [1000 + 500 + r * 40 + i for r in range(2) for i in range(30)]
        timings["stream"] = cyc
        err, cyc, _ = await command({"kind": STORE, "mem_addr": 900, "local_addr": base,
                                     "count": 60, "rows": 1, "mem_stride": 0})
        assert err == 0
        for i in range(60):
            assert ctx.get(top.sram.data[900 + i]) == local[base + i]
        timings["store"] = cyc
        ctx.set(dut.window_limit, 950)
        err, cyc, _ = await command({"kind": STORE, "mem_addr": 900, "local_addr": base,
                                     "count": 60, "rows": 1, "mem_stride": 0})
        assert err == ErrorCode.WINDOW and cyc <= 6   # four cycles of checks, no bus access

    run(top, [bench], "dma_sram")
    # 60 words each: three cycles per word (the SRAM acknowledges two cycles after the request),
    # plus the checks (four cycles), burst breaks and pipeline fill (a STORE's first word comes
    # READ_LATENCY + 1 cycles after its read)
    for k, v in timings.items():
        assert v <= 3 * 60 + 18, (k, v)
