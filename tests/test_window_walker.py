# amaranth: UnusedElaboratable=no
"""WindowWalker (with its WindowGeometry) against a Python model of window mode's walk: every step's
inside flag, emitted destination and window-row taps, with random stalls of the step."""

import random

import pytest

from hypothesis import given, settings, strategies as st, HealthCheck

from accel.window_walker import WindowWalker
from simutil import run


def walk_model(h_in, w_in, k, stride, pad, h_out, w_out):
    """The virtual pixels of the walk in order: ``(vy, vx, inside, destination)``; ``destination``
    is ``(addr, ky, oy)`` of the first window whose row ends at the pixel, or None."""
    last_col = max(pad + w_in - 1, (w_out - 1) * stride + k - 1)
    last_row = max(pad + h_in - 1, (h_out - 1) * stride + k - 1)
    for vy in range(last_row + 1):
        oy = min(vy // stride, h_out - 1)
        ky = min(vy - oy * stride, 31)
        for vx in range(last_col + 1):
            inside = pad <= vx < pad + w_in and pad <= vy < pad + h_in
            first_tap = vx - (k - 1)
            dest = None
            if first_tap >= 0 and first_tap % stride == 0 and first_tap // stride < w_out and ky < k:
                dest = ((oy * w_out + first_tap // stride) * k + ky, ky, oy)
            yield vy, vx, inside, dest


def simulate_walk(max_k, h_in, w_in, k, stride, pad, h_out, w_out, seed, p_stall):
    dut = WindowWalker(max_k)
    rng = random.Random(seed)
    image = [[rng.randrange(256) for _ in range(w_in)] for _ in range(h_in)]
    steps = list(walk_model(h_in, w_in, k, stride, pad, h_out, w_out))
    checked = {"steps": 0, "emits": 0}

    def byte_at(vy, vx):
        y, x = vy - pad, vx - pad
        return image[y][x] if 0 <= y < h_in and 0 <= x < w_in else None

    async def bench(ctx):
        for name, v in (("win_k", k), ("stride", stride), ("pad", pad), ("h_in", h_in),
                        ("w_in", w_in), ("h_out", h_out), ("w_out", w_out),
                        ("win_k_held", k), ("pad_held", pad)):
            ctx.set(getattr(dut, name), v)
        await ctx.tick().repeat(2)       # the geometry's two register stages
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        for vy, vx, inside, dest in steps:
            byte = byte_at(vy, vx)
            ctx.set(dut.pixel_byte, byte if inside else rng.randrange(256))
            while rng.random() < p_stall:
                ctx.set(dut.step, 0)
                await ctx.tick()
            assert ctx.get(dut.walking), (vy, vx)
            assert ctx.get(dut.inside) == inside, (vy, vx)
            assert ctx.get(dut.emits) == (dest is not None), (vy, vx)
            if dest is not None:
                addr, ky, oy = dest
                assert (ctx.get(dut.dest_addr), ctx.get(dut.dest_tap_row),
                        ctx.get(dut.dest_window_y)) == (addr, ky, oy), (vy, vx)
                taps, pads = ctx.get(dut.tap_bytes), ctx.get(dut.tap_in_padding)
                for kx in range(k):
                    want = byte_at(vy, vx - (k - 1) + kx)
                    assert (pads >> kx) & 1 == (want is None), (vy, vx, kx)
                    if want is not None:
                        assert taps[kx] == want, (vy, vx, kx)
                for kx in range(k, max_k):
                    assert (pads >> kx) & 1, (vy, vx, kx)
                checked["emits"] += 1
            ctx.set(dut.step, 1)
            await ctx.tick()
            checked["steps"] += 1
        ctx.set(dut.step, 0)
        assert not ctx.get(dut.walking)
        # 20-bit address arithmetic: negative only when no window lies above another
        assert ctx.get(dut.row_words_minus_stride) == (w_out * k - stride) % (1 << 20)

    run(dut, [bench], "window_walker")
    assert checked["steps"] == len(steps)
    return checked


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(max_k=st.integers(1, 4), k_pick=st.integers(0, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 3), h_in=st.integers(1, 5), w_in=st.integers(1, 5),
       extra=st.integers(0, 1), seed=st.integers(0, 2**16), p_stall=st.sampled_from([0.0, 0.4]))
def test_walk_matches_model(max_k, k_pick, stride, pad, h_in, w_in, extra, seed, p_stall):
    k = 1 + k_pick % max_k
    h_out = max(1, (h_in + 2 * pad - k) // stride + 1) + extra
    w_out = max(1, (w_in + 2 * pad - k) // stride + 1) + extra
    simulate_walk(max_k, h_in, w_in, k, stride, pad, h_out, w_out, seed, p_stall)


def test_walk_emits_every_window_row():
    """3x3 stride 2 pad 1 over 5x5: each of the 3x3 windows' three rows is emitted once, as the
    first destination or further up (the model counts first destinations only)."""
    checked = simulate_walk(3, 5, 5, 3, 2, 1, 3, 3, 1, 0.0)
    # rows 0..6 of the padded image; first destinations: one per window column per virtual row
    # with ky < 3: rows 0,1,2 (oy 0), 3,4 (oy 1, ky 1..2), 5,6 (oy 2) -> 7 rows x 3 columns
    assert checked["emits"] == 21


def test_parameters_checked():
    with pytest.raises(TypeError):
        WindowWalker("3")
    with pytest.raises(ValueError):
        WindowWalker(0)
