// Host-side harness of the compiled simulator of the SoC (CXXRTL or Verilator).
//
// Built by firmware/cxxrtl_sim.py together with the design, which Yosys' write_cxxrtl or Verilator
// turned into C++. The generated "ports.h" includes the design and wraps it in a few inline
// functions, so that this file does not depend on the backend: pea_design_t, pea_new(),
// pea_delete(t), pea_eval(t) (settle the design after an input change), pea_set_<port>(t, v) and
// pea_get_<port>(t). The host port's Wishbone transfers and the wait for irq run here in C++, so
// Python crosses the ctypes boundary once per operation, not once per cycle.
//
// The cycle-level behaviour is the one of firmware/sim_transport.py (PySimTransport), so that both
// report the same cycle counts:
//   - every operation begins with one idle cycle (cyc low);
//   - a word transfer drives cyc/stb/we/adr/dat_w/sel=0xF and clocks until ack or err is seen high
//     before a rising edge; that edge ends it, cyc/stb drop, and the next word of the same
//     operation follows after one idle cycle;
//   - run_until_irq(n) looks at irq before each rising edge and clocks at most n edges.
// The design starts in its initial state (Amaranth's init values), like Amaranth's simulator; rst is
// held low.

#include <cstdint>
#include <cstddef>
#include <new>

#include "ports.h"

namespace {

struct Sim {
	pea_design_t *top;
	uint64_t cycles = 0;

	Sim() : top(pea_new()) {
		pea_set_rst(top, false);
		pea_set_clk(top, false);
		pea_set_cyc(top, false);
		pea_set_stb(top, false);
		pea_set_we(top, false);
		pea_set_sel(top, 0u);
		pea_set_adr(top, 0u);
		pea_set_dat_w(top, 0u);
		pea_eval(top);
	}

	~Sim() { pea_delete(top); }

	// Settle combinational logic after the inputs changed (the clock stays low).
	void settle() { pea_eval(top); }

	// One rising edge, then the clock is lowered again. The falling-edge evaluation is not optional
	// for CXXRTL: a step at the rising edge commits the flip-flops, but the combinational outputs
	// derived from them (ack, dat_r, irq) are only recomputed by the next evaluation.
	void tick() {
		pea_set_clk(top, true);
		pea_eval(top);
		pea_set_clk(top, false);
		pea_eval(top);
		cycles++;
	}

	// One word transfer; returns false on err.
	bool transfer(uint32_t adr, bool we, uint32_t dat_w, uint32_t *dat_r) {
		pea_set_adr(top, adr);
		pea_set_sel(top, 0xfu);
		pea_set_we(top, we);
		pea_set_dat_w(top, dat_w);
		pea_set_cyc(top, true);
		pea_set_stb(top, true);
		settle();
		bool ack, err;
		uint32_t data;
		for (;;) {
			ack = pea_get_ack(top);
			err = pea_get_err(top);
			data = pea_get_dat_r(top);
			tick();
			if (ack || err)
				break;
		}
		pea_set_cyc(top, false);
		pea_set_stb(top, false);
		pea_set_we(top, false);
		settle();
		if (dat_r)
			*dat_r = data;
		return !err;
	}

	// Returns the number of words transferred; fewer than n means the word at that index ended with err.
	size_t words(uint32_t adr, bool we, const uint32_t *in, uint32_t *out, size_t n) {
		tick();   // the idle cycle that begins every operation
		for (size_t i = 0; i < n; i++) {
			if (i)
				tick();
			if (!transfer(adr + (uint32_t)i, we, we ? in[i] : 0u, we ? nullptr : &out[i]))
				return i;
		}
		return n;
	}

	uint64_t run_until_irq(uint64_t max_cycles) {
		tick();
		uint64_t n = 0;
		while (n < max_cycles && !pea_get_irq(top)) {
			tick();
			n++;
		}
		return n;
	}
};

} // namespace

// Only the C API is exported (the library is built with -fvisibility=hidden).
#define PEA_API __attribute__((visibility("default")))

extern "C" {

PEA_API void *pea_create() {
	return new (std::nothrow) Sim;
}

PEA_API void pea_destroy(void *sim) {
	delete static_cast<Sim *>(sim);
}

PEA_API size_t pea_write_words(void *sim, uint32_t adr, const uint32_t *words, size_t n) {
	return static_cast<Sim *>(sim)->words(adr, true, words, nullptr, n);
}

PEA_API size_t pea_read_words(void *sim, uint32_t adr, uint32_t *words, size_t n) {
	return static_cast<Sim *>(sim)->words(adr, false, nullptr, words, n);
}

PEA_API uint64_t pea_run_until_irq(void *sim, uint64_t max_cycles) {
	return static_cast<Sim *>(sim)->run_until_irq(max_cycles);
}

// Clock n cycles with the bus idle (for benchmarks).
PEA_API void pea_run(void *sim, uint64_t n) {
	Sim *s = static_cast<Sim *>(sim);
	for (uint64_t i = 0; i < n; i++)
		s->tick();
}

PEA_API int pea_irq(void *sim) {
	return pea_get_irq(static_cast<Sim *>(sim)->top);
}

PEA_API uint64_t pea_cycles(void *sim) {
	return static_cast<Sim *>(sim)->cycles;
}

}
