"""The sequencer's descriptor fetch and prefetch against a Python model, with random bus answers."""

import random

from hypothesis import given, settings, strategies as st

from contract import isa
from accel.descriptor_fetch import DescriptorFetch
from cycle_model import check_cycles

N = isa.DESCRIPTOR_WORDS
MASK30 = (1 << 30) - 1


class FetchModel:
    def __init__(self):
        self.words = [0] * N
        self.next_words = [0] * N
        self.read_data = 0
        self.word_written = self.next_word_written = 0
        self.read_addr = self.word_index = self.next_word_index = 0
        self.prefetch_failed = self.conv_next_in_window = 0

    def prefetching(self, i):
        allowed = self.conv_next_in_window and not i["dma_pending"] and not self.prefetch_failed
        started = self.next_word_index != 0 and not self.prefetch_failed
        return int((allowed or started) and self.next_word_index != N)

    def request(self, i):
        return bool(i["fetch"] or (i["prefetch_enable"] and self.prefetching(i)))

    def outputs(self, i):
        request = self.request(i)
        return {
            "desc": sum(w << (32 * k) for k, w in enumerate(self.words)),
            "fetched": int(i["bus.ack"] and self.word_index == N - 1),
            "error": i["bus.err"],
            "prefetching": self.prefetching(i),
            "prefetched": int(self.next_word_index == N),
            "bus.cyc": int(request), "bus.stb": int(request),
            "bus.adr": self.read_addr if request else 0,
        }

    def step(self, i):
        prefetching = self.prefetching(i)
        words, next_words = list(self.words), list(self.next_words)
        for k in range(N):
            if self.word_written >> k & 1:
                words[k] = self.read_data
            if self.next_word_written >> k & 1:
                next_words[k] = self.read_data
        if i["take_prefetched"]:
            words = list(self.next_words)
        op = isa.unpack(self.words)["op"]
        self.conv_next_in_window = int(op == isa.Op.CONV and i["next_in_window"])
        self.read_data = i["bus.dat_r"]
        self.word_written = self.next_word_written = 0
        fetch_ack = i["fetch"] and not i["bus.err"] and i["bus.ack"]
        prefetch_ack = i["prefetch_enable"] and prefetching and not i["bus.err"] and i["bus.ack"]
        if i["begin_fetch"]:
            self.read_addr = i["addr"]
        elif i["begin_prefetch"]:
            self.read_addr = i["next_addr"]
        elif fetch_ack or prefetch_ack:
            self.read_addr = (self.read_addr + 1) & MASK30
        if fetch_ack:
            self.word_written = 1 << self.word_index
            if self.word_index != N - 1:
                self.word_index += 1
        if i["prefetch_enable"] and prefetching:
            if i["bus.err"]:
                self.prefetch_failed = 1
            elif i["bus.ack"]:
                self.next_word_written = 1 << (self.next_word_index % N)
                self.next_word_index += 1
        if i["restart"]:
            self.word_index = self.next_word_index = self.prefetch_failed = 0
        self.words, self.next_words = words, next_words


def random_stimulus(rng):
    """Cycles in segments: the sequencer stays a while in one state, fetching, waiting with the
    prefetch enabled, or neither (never both)."""
    stimulus = []
    for _ in range(rng.randrange(1, 9)):
        phase = rng.choice(["fetch", "prefetch", "idle"])
        for _ in range(rng.randrange(1, 20)):
            err = int(rng.random() < 0.1)
            take = int(rng.random() < 0.05)
            begin = phase == "idle" and rng.random() < 0.2
            stimulus.append({
                "addr": rng.randrange(1 << 30), "next_addr": rng.randrange(1 << 30),
                "next_in_window": int(rng.random() < 0.8), "dma_pending": int(rng.random() < 0.2),
                "fetch": int(phase == "fetch"), "prefetch_enable": int(phase == "prefetch"),
                "begin_fetch": int(begin), "begin_prefetch": int(phase == "idle" and not begin and take),
                "restart": int(rng.random() < 0.05), "take_prefetched": take,
                "bus.ack": int(not err and rng.random() < 0.5), "bus.err": err,
                # often a CONV opcode, so that prefetches start
                "bus.dat_r": isa.Op.CONV if rng.random() < 0.5 else rng.randrange(1 << 32),
            })
    return stimulus


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_descriptor_fetch_matches_model(seed):
    rng = random.Random(seed)
    check_cycles(DescriptorFetch(), FetchModel(), random_stimulus(rng),
                 ["desc", "fetched", "error", "prefetching", "prefetched", "bus.cyc", "bus.stb",
                  "bus.adr"], "descriptor_fetch")
