"""Functional reference model of the accelerator (not cycle-accurate), in numpy.

It executes a program from main memory exactly as docs/ARCHITECTURE.md 3.1-3.3 and the shared error
codes specify: descriptors are fetched from memory at ``prog_addr`` and decoded with ``contract.isa``;
LOAD/STORE move 32-bit lanes between main memory and the local buffers (modelled as arrays of lanes
with the exact bit layouts), EMBED and CONV read and write those buffers. It proves the compiler
right before the RTL exists and is the debugging reference for the RTL (``trace=True`` keeps every
code bank and the residual buffer after each descriptor).

Rules this model applies (the RTL must agree; they are stated here so that a mismatch is findable):

- Every main-memory access (descriptor fetch, LOAD, STORE, EMBED) is checked against
  ``[window_base, window_limit)`` before any access: error 2 (WINDOW). An address inside the window
  but beyond the memory: 3 (BUS_ERROR; this model refuses the whole transfer, the RTL stops at the
  failing word). Unknown opcode: 1 (BAD_OPCODE). LOAD/STORE with ``count == 0`` or ``rows == 0``:
  nothing, no check (as the DMA). A LOAD/STORE local range outside its buffer, an unknown buffer
  id, or a STORE from a write-only buffer (weights, thresholds, embedding table): 4
  (LOCAL_RANGE). More than ``max_descriptors`` without END: 7 (TIMEOUT). An error stops the
  program; the failing descriptor changes nothing.
- 5 (BAD_DESCRIPTOR), the engine's checks: EMBED: ``dst_bank >= n_code_banks``, ``emb_c`` outside
  ``1..emb_channels``, ``nsub`` outside ``1..ceil(8/a_planes)``, empty image, ``h*w*nsub`` beyond the
  bank; raw: ``emb_c > p_i``; not raw: ``emb_d == 0``, ``emb_q`` outside ``1..a_planes``,
  ``emb_c*emb_d > p_i``, ``emb_d*emb_q > 16``; window mode (``k >= 1``): also ``emb_c != 1``,
  ``raw``, ``nsub != 1``, ``k > emb_channels``, ``k*emb_d > p_i``, a zero ``stride``, ``h_out`` or
  ``w_out``, and ``h_out*w_out*k`` beyond the bank instead of ``h*w*nsub``. CONV: a zero
  ``k/stride/nsub/n_cig/n_cog`` or size, ``pad >= k``, ``nsub > ceil(8/a_planes)``,
  ``(h_out-1)*stride + k > h_in + 2*pad`` (same for w), banks out of range, ``thr_out`` with
  ``dst_bank == src_bank`` or ``out_bits`` outside ``1..max_out_bits`` or ``n_cig_out`` not in
  ``((n_cog-1)*m, n_cog*m]``, ``pool`` without ``thr_out`` or with ``res_out`` or an odd output,
  ``sum`` with ``res_out``, any extent beyond its buffer (source/destination bank, weights,
  thresholds, residual).
- Local-buffer words narrower than their lanes (e.g. 16-bit code words) keep only their low bits.
- CONV: ``acc`` wraps to ``acc_bits`` (two's complement); ``v = acc + residual`` is exact; values
  written to the residual buffer (``res_out``, ``sum``) wrap to ``res_bits``. Wraps are recorded in
  ``RunResult.overflows`` (the compiler's bounds promise there are none). ``sum`` writes the
  per-group sums at ``res_base + cog`` (``res_out`` is then not used). The residual read of pixel
  ``pix`` happens before any write of that pixel, so ``res_in``/``res_out`` may share ``res_base``.
  With ``thr_out``, ``src_bank`` must differ from ``dst_bank``. Output code words are written for the
  ``n_cig_out`` groups only; padding channels get the codes the threshold entries give (0 for
  32767 thresholds).
- EMBED: ``ceil(h*w*c/4)`` words from ``mem_addr``, bytes HWC little-endian; non-raw: channel
  ``c*d + j`` = bits ``[j*q, (j+1)*q)`` of table entry ``c*256 + pixel``; raw: channel ``c`` = the
  pixel. Written as one code group (``C*d <= p_i``) with ``nsub`` sub-words per pixel. Window mode
  (``k >= 1``): the next conv's ``k x k`` windows instead, word ``(oy*w_out + ox)*k + ky`` lane
  ``kx*d + j`` = bits ``[j*q, (j+1)*q)`` of table entry ``kx*256 + img[y, x]``
  (``y = oy*stride - pad + ky``, ``x = ox*stride - pad + kx``), 0 outside the image and on lanes
  from ``k*d`` on (``layout.window_codes``); windows may reach beyond the ones covering the image.
"""

from dataclasses import dataclass, field

import numpy as np

from contract import isa
from contract.config import (BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL, BUF_CODE_BANK0,
                          EMB_ENTRY_BITS, LOCAL_LANE_BITS, WRITE_ONLY_BUFFERS)
from firmware import layout
from firmware.layout import ceil_div, signed


__all__ = ["RefSim", "RunResult", "TraceEntry", "ideal_cycles", "run_compiled", "feature_maps",
           "ERROR_NAMES"]

from contract.errors import ErrorCode

OK, BAD_OPCODE, WINDOW, BUS_ERROR, LOCAL_RANGE, BAD_DESCRIPTOR, ABORTED, TIMEOUT = (
    int(ErrorCode.OK), int(ErrorCode.BAD_OPCODE), int(ErrorCode.WINDOW), int(ErrorCode.BUS_ERROR),
    int(ErrorCode.LOCAL_RANGE), int(ErrorCode.BAD_DESCRIPTOR), int(ErrorCode.ABORTED),
    int(ErrorCode.TIMEOUT))
ERROR_NAMES = {int(e): e.name for e in ErrorCode}


class _Fault(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code
        self.why = why


@dataclass
class TraceEntry:
    """One executed descriptor.

    Members
    -------
    addr : int
        Word address of the descriptor.
    fields : dict
        ``isa.unpack`` of it.
    cycles : int
        :func:`ideal_cycles` of it.
    error : int
        0, or the error code that stopped the program here.
    banks : list of numpy.ndarray or None
        Lanes of every code bank after the descriptor (``trace=True``).
    residual : numpy.ndarray or None
        Lanes of the residual buffer after the descriptor (``trace=True``).
    """
    addr: int
    fields: dict
    cycles: int
    error: int = 0
    banks: list = None
    residual: np.ndarray = None


@dataclass
class RunResult:
    """Result of :meth:`RefSim.run`.

    Members
    -------
    error : int
        0 (END reached) or the error code.
    error_name : str
    message : str
        Why it stopped (empty when OK).
    pc : int
        Address of the END or of the failing descriptor.
    index : int
        Its index from ``prog_addr`` (what the ``ERROR.pc`` register reports).
    executed : int
        Descriptors executed (END included, the failing one included).
    cycles : int
        Sum of :func:`ideal_cycles` over the executed descriptors.
    trace : list of TraceEntry
    overflows : list of str
        Wraps of ``acc_bits``/``res_bits`` values (none for a correctly compiled model).
    """
    error: int
    error_name: str
    message: str
    pc: int
    index: int
    executed: int
    cycles: int
    trace: list = field(default_factory=list)
    overflows: list = field(default_factory=list)


def ideal_cycles(fields):
    """Ideal cycle estimate of one descriptor (its compute or transfer, not the 8-word fetch):
    CONV ``h_out*w_out*k*k*n_cig*n_cog*nsub`` (one word-set per cycle); LOAD/STORE ``rows*count``
    (one word per cycle); EMBED ``max(pixels*nsub, words read)``; END 0.

    An EMBED in window mode (``k >= 1``) walks the grid of positions its windows and the image
    span, one position per cycle: rows ``-pad .. max(h_in, (h_out-1)*stride - pad + k) - 1``, the
    same for columns (each position is looked up once and goes into every window row holding it).

    ``fields`` is ``isa.unpack`` of the descriptor or any dict of its fields (missing ones are 0).
    """
    f = dict.fromkeys(isa.FIELD_BY_NAME, 0)
    f.update(fields)
    op = f["op"]
    if op == isa.Op.CONV:
        return f["h_out"] * f["w_out"] * f["k"] ** 2 * f["n_cig"] * f["n_cog"] * f["nsub"]
    if op in (isa.Op.LOAD, isa.Op.STORE):
        return f["rows"] * f["count"]
    if op == isa.Op.EMBED:
        pix = f["h_in"] * f["w_in"]
        walked = pix * max(f["nsub"], 1)
        if f["k"]:
            k, s, p = f["k"], f["stride"], f["pad"]
            walked = ((max(f["h_in"], (f["h_out"] - 1) * s - p + k) + p)
                      * (max(f["w_in"], (f["w_out"] - 1) * s - p + k) + p))
        return max(walked, ceil_div(pix * f["emb_c"], 4))
    return 0


class RefSim:
    """Main memory and local buffers of one accelerator, and a program executor.

    Parameters
    ----------
    config : AccelConfig
    mem_words : int, optional
        Main-memory size (default ``config.mem_words``).

    Members
    -------
    mem : numpy.ndarray
        uint32 main memory.
    local : dict of int to numpy.ndarray
        uint32 lanes of each local buffer by buffer id (``config.depth(b) * config.lanes(b)``).
    """

    def __init__(self, config, mem_words=None):
        self.config = config
        self.mem = np.zeros(mem_words or config.mem_words, np.uint32)
        self.buffer_ids = [BUF_WEIGHTS, BUF_THRESHOLDS, BUF_EMBED, BUF_RESIDUAL] + \
            [BUF_CODE_BANK0 + b for b in range(config.n_code_banks)]
        self.local = {b: np.zeros(config.depth(b) * config.lanes(b), np.uint32) for b in self.buffer_ids}
        # per-lane masks: bits of a lane that exist in the buffer word
        self._lane_mask = {}
        for b in self.buffer_ids:
            wb, L = config.word_bits(b), config.lanes(b)
            m = np.array([min(32, max(0, wb - 32 * l)) for l in range(L)])
            self._lane_mask[b] = np.array([(1 << n) - 1 for n in m], dtype=np.uint64).astype(np.uint32)

    # ---- host access -------------------------------------------------------------------------
    def write(self, addr, words):
        words = np.asarray(words, dtype=np.uint32).reshape(-1)
        self.mem[addr:addr + words.size] = words

    def read(self, addr, n):
        return self.mem[addr:addr + n].copy()

    def load_image(self, compiled):
        """Write a CompiledModel's memory image at its window."""
        self.write(compiled.window_base, compiled.memory)

    def bank(self, b):
        return self.local[BUF_CODE_BANK0 + b]

    @property
    def residual(self):
        return self.local[BUF_RESIDUAL]

    # ---- execution ---------------------------------------------------------------------------
    def run(self, prog_addr, window_base, window_limit, *, trace=False, max_descriptors=100_000):
        """Execute from ``prog_addr`` until END or an error.

        Returns
        -------
        RunResult
        """
        self.overflows = []
        pc, n, cycles = prog_addr, 0, 0
        entries = []
        self._win = (window_base, window_limit)
        self._prog = prog_addr
        self._pending = None      # local range of an `async_dma` transfer still moving on the hardware
        while True:
            if n >= max_descriptors:
                return self._result(TIMEOUT, f"no END after {n} descriptors", pc, n, cycles, entries)
            n += 1
            fields = None
            try:
                self._check_mem(pc, isa.DESCRIPTOR_WORDS, "descriptor fetch")
                fields = isa.unpack(self.mem[pc:pc + isa.DESCRIPTOR_WORDS].tolist())
                op = fields["op"]
                if op not in isa.Op.NAMES:
                    raise _Fault(BAD_OPCODE, f"opcode {op}")
                c = ideal_cycles(fields)
                if op in (isa.Op.LOAD, isa.Op.STORE, isa.Op.EMBED, isa.Op.END) or fields["wait_dma"]:
                    self._pending = None          # the sequencer waits for the transfer here
                elif op == isa.Op.CONV and self._pending is not None:
                    self._check_hazard(fields)
                if op == isa.Op.END:
                    entries.append(self._entry(pc, fields, 0, OK, trace))
                    return self._result(OK, "", pc, n, cycles, entries)
                getattr(self, "_" + isa.Op.NAMES[op].lower())(fields)
                if op in (isa.Op.LOAD, isa.Op.STORE) and fields["async_dma"] and fields["count"] and fields["rows"]:
                    buf, lane = self._local_range(fields["local_addr"], fields["count"] * fields["rows"])
                    self._pending = (buf, lane, lane + fields["count"] * fields["rows"])
                cycles += c
                entries.append(self._entry(pc, fields, c, OK, trace))
            except _Fault as f:
                entries.append(self._entry(pc, fields or {}, 0, f.code, trace))
                return self._result(f.code, f.why, pc, n, cycles, entries)
            pc += isa.DESCRIPTOR_WORDS

    def _check_hazard(self, f):
        """A CONV running while an async transfer moves must not touch what it moves: on the
        hardware the result would depend on timing. Only weights may be in flight, outside the
        CONV's own weight range. (A compiler bug, reported as BAD_DESCRIPTOR.)"""
        buf, lo, hi = self._pending
        Lw = self.config.lanes(BUF_WEIGHTS)
        w_lo = f["w_base"] * Lw
        w_hi = (f["w_base"] + f["n_cog"] * f["k"] * f["k"] * f["n_cig"]) * Lw
        if buf != BUF_WEIGHTS or (lo < w_hi and w_lo < hi):
            raise _Fault(BAD_DESCRIPTOR, f"hazard: CONV runs while an async transfer still writes "
                                         f"buffer {buf} lanes [{lo}, {hi})")

    def _entry(self, pc, fields, c, err, trace):
        e = TraceEntry(pc, fields, c, err)
        if trace:
            e.banks = [self.bank(b).copy() for b in range(self.config.n_code_banks)]
            e.residual = self.residual.copy()
        return e

    def _result(self, err, why, pc, n, cycles, entries):
        return RunResult(err, ERROR_NAMES.get(err, str(err)), why, pc,
                         (pc - self._prog) // isa.DESCRIPTOR_WORDS, n, cycles, entries,
                         list(self.overflows))

    def _check_mem(self, lo, n, what):
        base, limit = self._win
        if lo < base or lo + n > limit:
            raise _Fault(WINDOW, f"{what} [{lo}, {lo + n}) outside the window [{base}, {limit})")
        if lo + n > self.mem.size:
            raise _Fault(BUS_ERROR, f"{what} [{lo}, {lo + n}) beyond main memory ({self.mem.size} words)")

    def _local_range(self, local_addr, n):
        buf, lane = local_addr >> LOCAL_LANE_BITS, local_addr & ((1 << LOCAL_LANE_BITS) - 1)
        if buf not in self.local:
            raise _Fault(LOCAL_RANGE, f"unknown local buffer {buf}")
        if lane + n > self.local[buf].size:
            raise _Fault(LOCAL_RANGE, f"local lanes [{lane}, {lane + n}) beyond buffer {buf} "
                                      f"({self.local[buf].size} lanes)")
        return buf, lane

    def _mem_rows(self, f):
        count, rows, stride, addr = f["count"], f["rows"], f["mem_stride"], f["mem_addr"]
        if count == 0 or rows == 0:
            return []
        self._check_mem(addr, (rows - 1) * stride + count, isa.Op.NAMES[f["op"]])
        return [addr + r * stride for r in range(rows)]

    def _load(self, f):
        if f["count"] == 0 or f["rows"] == 0:          # the DMA finishes without any access or check
            return
        rows = self._mem_rows(f)
        buf, lane = self._local_range(f["local_addr"], f["count"] * f["rows"])
        data = np.concatenate([self.mem[a:a + f["count"]] for a in rows]) if rows else np.zeros(0, np.uint32)
        L = self.config.lanes(buf)
        idx = lane + np.arange(data.size)
        self.local[buf][idx] = data & self._lane_mask[buf][idx % L]

    def _store(self, f):
        if f["count"] == 0 or f["rows"] == 0:
            return
        rows = self._mem_rows(f)
        buf, lane = self._local_range(f["local_addr"], f["count"] * f["rows"])
        if buf in WRITE_ONLY_BUFFERS:
            raise _Fault(LOCAL_RANGE, f"STORE from write-only local buffer {buf}")
        cnt = f["count"]
        for r, a in enumerate(rows):
            self.mem[a:a + cnt] = self.local[buf][lane + r * cnt:lane + (r + 1) * cnt]

    def _bad(self, cond, why):
        if cond:
            raise _Fault(BAD_DESCRIPTOR, why)

    def _embed(self, f):
        c = self.config
        H, W, C, raw, nsub = f["h_in"], f["w_in"], f["emb_c"], f["raw"], f["nsub"]
        d, q, bank, k = f["emb_d"], f["emb_q"], f["dst_bank"], f["k"]
        self._bad(H < 1 or W < 1, "EMBED with an empty image")
        self._bad(not 1 <= nsub <= ceil_div(8, c.a_planes), f"EMBED nsub={nsub} outside 1..ceil(8/a_planes)")
        self._bad(bank >= c.n_code_banks, f"dst_bank {bank} >= n_code_banks")
        self._bad(not 1 <= C <= c.emb_channels, f"emb_c={C} outside 1..emb_channels")
        if raw:
            self._bad(C > c.p_i, f"raw EMBED emb_c={C} > p_i")
        else:
            self._bad(d < 1 or not 1 <= q <= c.a_planes, f"emb_d={d}/emb_q={q} out of range")
            self._bad(d * q > EMB_ENTRY_BITS, f"emb_d*emb_q={d * q} > {EMB_ENTRY_BITS}")
            self._bad(C * d > c.p_i, f"emb_c*emb_d={C * d} > p_i")
        if k:
            Ho, Wo = f["h_out"], f["w_out"]
            self._bad(C != 1 or raw or nsub != 1,
                      f"window EMBED needs emb_c=1, raw=0, nsub=1 (emb_c={C} raw={raw} nsub={nsub})")
            self._bad(k > c.emb_channels, f"window EMBED k={k} > emb_channels")
            self._bad(k * d > c.p_i, f"window EMBED k*emb_d={k * d} > p_i")
            self._bad(min(f["stride"], Ho, Wo) < 1, "window EMBED with a zero stride/h_out/w_out")
            self._bad(Ho * Wo * k > c.bank_depth, "EMBED windows beyond the code bank")
        else:
            self._bad(H * W * nsub > c.bank_depth, "EMBED output beyond the code bank")
        n_words = ceil_div(H * W * C, 4)
        self._check_mem(f["mem_addr"], n_words, "EMBED")
        data = self.mem[f["mem_addr"]:f["mem_addr"] + n_words].astype("<u4")
        pixels = data.view(np.uint8)[:H * W * C].reshape(H, W, C).transpose(2, 0, 1).astype(np.int64)
        if raw:
            full = np.zeros((c.p_i, H, W), np.int64)
            full[:C] = pixels
        else:
            # image channel c looks up table channel c; in window mode (one channel) window column
            # kx looks up table channel kx
            tables = np.arange(k or C)[:, None, None]
            table = self.local[BUF_EMBED] & 0xFFFF                      # one lane per 16-bit entry
            entries = table[tables * 256 + pixels].astype(np.int64)     # (C or k, H, W)
            j = np.arange(d, dtype=np.int64)
            codes = (entries[:, None] >> (j[None, :, None, None] * q)) & ((1 << q) - 1)  # (., d, H, W)
            if k:
                full = layout.window_codes(codes, k, f["stride"], f["pad"], Ho, Wo, c.p_i)  # k groups
            else:
                full = np.zeros((c.p_i, H, W), np.int64)
                full[:C * d] = codes.reshape(C * d, H, W)
        lanes = layout.encode_codes(full, nsub * c.a_planes, c)
        self.bank(bank)[:lanes.size] = lanes & np.resize(self._lane_mask[BUF_CODE_BANK0 + bank],
                                                          lanes.size)

    def _conv(self, f):
        c = self.config
        k, s, p, nsub = f["k"], f["stride"], f["pad"], f["nsub"]
        H, W, Ho, Wo = f["h_in"], f["w_in"], f["h_out"], f["w_out"]
        n_cig, n_cog, src, dst = f["n_cig"], f["n_cog"], f["src_bank"], f["dst_bank"]
        thr_out, res_in, res_out, pool, do_sum = f["thr_out"], f["res_in"], f["res_out"], f["pool"], f["sum"]
        self._bad(min(k, s, nsub, n_cig, n_cog, H, W, Ho, Wo) < 1, "CONV with a zero size field")
        self._bad(p >= k, f"pad={p} >= k={k}")
        self._bad(nsub > ceil_div(8, c.a_planes), f"nsub={nsub} > ceil(8/a_planes)")
        self._bad((Ho - 1) * s + k > H + 2 * p or (Wo - 1) * s + k > W + 2 * p,
                  "output size beyond the padded input")
        self._bad(src >= c.n_code_banks, f"src_bank {src} >= n_code_banks")
        self._bad(H * W * n_cig * nsub > c.bank_depth, "CONV input beyond the code bank")
        wwords = n_cog * k * k * n_cig
        self._bad(f["w_base"] + wwords > c.wbuf_depth, "CONV weights beyond the weight buffer")
        n_pix = Ho * Wo
        self._bad(do_sum and res_out, "sum with res_out")
        self._bad(pool and (not thr_out or res_out), "pool needs thr_out and no res_out")
        if res_in or res_out:
            self._bad(f["res_base"] + n_pix * n_cog > c.res_depth, "CONV residual beyond the buffer")
        if do_sum:
            self._bad(f["res_base"] + n_cog > c.res_depth, "CONV sums beyond the residual buffer")
        if thr_out:
            n_out = f["n_cig_out"]
            self._bad(dst >= c.n_code_banks, f"dst_bank {dst} >= n_code_banks")
            self._bad(dst == src, "CONV with thr_out writes its own src_bank")
            self._bad(not 1 <= f["out_bits"] <= c.max_out_bits, f"out_bits={f['out_bits']} out of range")
            self._bad(f["thr_base"] + n_cog * c.p_o > c.thr_depth, "CONV thresholds beyond the buffer")
            self._bad(not (n_cog - 1) * c.m < n_out <= n_cog * c.m,
                      f"n_cig_out={n_out} does not match n_cog={n_cog}")
            self._bad(pool and (Ho % 2 or Wo % 2), "pool on an odd output size")
            Hp, Wp = (Ho // 2, Wo // 2) if pool else (Ho, Wo)
            self._bad(Hp * Wp * n_out > c.bank_depth, "CONV output beyond the code bank")

        # input codes, every sub-word plane (padding channels as they are in the bank)
        Cp = n_cig * c.p_i
        a = layout.decode_codes(self.bank(src), Cp, H, W, nsub * c.a_planes, c).astype(np.float64)
        # weights (co, ci, ky, kx) as +-1
        Lw = c.lanes(BUF_WEIGHTS)
        wl = self.local[BUF_WEIGHTS][f["w_base"] * Lw:(f["w_base"] + wwords) * Lw].reshape(wwords, Lw)
        wbits = layout.lanes_to_bits(wl, c.weight_word_bits).reshape(n_cog, k, k, n_cig, c.p_o, c.p_i)
        wgt = wbits.transpose(0, 4, 3, 5, 1, 2).reshape(n_cog * c.p_o, Cp, k, k).astype(np.float64) * 2 - 1
        # zero-padded input (every tap of the output lies inside it, checked above)
        ap = np.zeros((Cp, H + 2 * p, W + 2 * p))
        ap[:, p:p + H, p:p + W] = a
        acc = np.zeros((n_cog * c.p_o, n_pix))
        for ky in range(k):
            for kx in range(k):
                win = ap[:, ky:ky + (Ho - 1) * s + 1:s, kx:kx + (Wo - 1) * s + 1:s].reshape(Cp, n_pix)
                acc += wgt[:, :, ky, kx] @ win
        acc = np.rint(acc).astype(np.int64)                                  # exact: |acc| < 2^53
        accw = signed(acc, c.acc_bits)
        if np.any(accw != acc):
            self.overflows.append(f"CONV acc exceeds acc_bits={c.acc_bits} (max |acc| {np.abs(acc).max()})")
        v = accw
        Lr = c.lanes(BUF_RESIDUAL)
        rb = f["res_base"]
        if res_in:
            lanes = self.residual[rb * Lr:(rb + n_pix * n_cog) * Lr]
            r = layout.decode_ints(lanes, n_cog * c.p_o, Ho, Wo, c).reshape(n_cog * c.p_o, n_pix)
            v = v + r
        rmax = 1 << (c.res_bits - 1)
        if do_sum:
            sums = v.sum(axis=1)
            if np.any((sums < -rmax) | (sums >= rmax)):
                self.overflows.append(f"CONV sum exceeds res_bits={c.res_bits}")
            self.residual[rb * Lr:(rb + n_cog) * Lr] = layout.encode_ints(sums[:, None, None], c)
        elif res_out:
            if np.any((v < -rmax) | (v >= rmax)):
                self.overflows.append(f"CONV v exceeds res_bits={c.res_bits}")
            self.residual[rb * Lr:(rb + n_pix * n_cog) * Lr] = \
                layout.encode_ints(v.reshape(-1, Ho, Wo), c)
        if thr_out:
            Lt = c.lanes(BUF_THRESHOLDS)
            tb = f["thr_base"]
            tl = self.local[BUF_THRESHOLDS][tb * Lt:(tb + n_cog * c.p_o) * Lt].reshape(-1, Lt).astype(np.int64)
            t = np.stack([signed(tl[:, 0], 16), signed(tl[:, 0] >> 16, 16), signed(tl[:, 1], 16)], axis=1)
            neg = (tl[:, 1] >> 16) & 1
            u = np.where(neg[:, None] == 1, -v, v)
            cnt = (u[:, None, :] >= t[:, :, None]).sum(axis=1)
            codes = np.minimum(cnt, (1 << f["out_bits"]) - 1).reshape(-1, Ho, Wo)
            if pool:
                codes = codes.reshape(-1, Ho // 2, 2, Wo // 2, 2).max(axis=(2, 4))
            codes = codes[:f["n_cig_out"] * c.p_i]
            lanes = layout.encode_codes(codes, f["out_bits"], c)
            bank = BUF_CODE_BANK0 + dst
            self.local[bank][:lanes.size] = lanes & np.resize(self._lane_mask[bank], lanes.size)


def run_compiled(compiled, images, *, trace=False, sim=None):
    """Run a CompiledModel on a batch of uint8 images ``(N, C, H, W)`` the way a driver would:
    write the image, run ``prog_load_addr`` for the first image and ``prog_image_addr`` after,
    read and decode the logits.

    Returns
    -------
    logits_int : numpy.ndarray
        int64 ``(N, classes)``.
    results : list of RunResult
    sim : RefSim
    """
    sim = sim or RefSim(compiled.config)
    sim.load_image(compiled)
    out, results = [], []
    for n, img in enumerate(np.asarray(images)):
        sim.write(compiled.input_addr, compiled.prepare_input(img))
        prog = compiled.prog_load_addr if n == 0 else compiled.prog_image_addr
        res = sim.run(prog, compiled.window_base, compiled.window_limit, trace=trace)
        results.append(res)
        if res.error:
            raise RuntimeError(f"refsim: {res.error_name} at descriptor {res.pc}: {res.message}")
        out.append(compiled.decode_logits(sim.read(compiled.output_addr, compiled.output_words)))
    return np.array(out, dtype=np.int64).reshape(len(out), compiled.num_classes), results, sim


def feature_maps(compiled, result):
    """Every feature map of a traced run (``trace=True``), decoded from the code bank / residual
    buffer state right after the descriptor that produced it.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensor name to ``(C, H, W)`` int64 (logits: ``(classes,)``). Code maps include their padding
        channels as ``name + "#padding"`` (``(n_cig*p_i - C, H, W)``), which must be 0. A map an
        EMBED wrote in window mode (``TensorPlacement.window``) is its window map
        ``(k*p_i, h_out, w_out)`` (``CompiledModel.as_stored`` of the golden map), padding lanes
        included (no ``#padding`` channels).
    """
    c = compiled.config
    by_addr = {e.addr: e for e in result.trace}
    out = {}
    for t in compiled.tensors.values():
        plan = compiled.layers[t.producer]
        entry = by_addr.get(compiled.descriptors[plan.desc_index]["addr"])
        if entry is None or entry.banks is None:
            continue
        C, H, W = t.shape
        if t.kind == "codes":
            C, H, W = t.bank_shape(c.p_i)
            full = layout.decode_codes(entry.banks[t.bank], C, H, W, t.bits, c)
            out[t.name] = full[:C]
            out[t.name + "#padding"] = full[C:]
        elif t.kind == "ints":
            Lr = c.lanes(BUF_RESIDUAL)
            out[t.name] = layout.decode_ints(entry.residual[t.res_base * Lr:], C, H, W, c)[:C]
        else:
            Lr = c.lanes(BUF_RESIDUAL)
            out[t.name] = layout.decode_sums(entry.residual[t.res_base * Lr:], C, c)
    return out
