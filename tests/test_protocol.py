"""Host codec of the bridge protocol (contract/protocol.py) and its byte-level device model."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from contract import protocol as P


words_st = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40)


def test_crc16_check_value():
    # The standard check value of CRC-16/CCITT-FALSE.
    assert P.crc16(b"123456789") == 0x29B1
    crc = 0xFFFF
    for b in b"123456789":
        crc = P.crc16_update_byte(crc, b)
    assert crc == 0x29B1


@given(st.binary(max_size=64))
def test_crc16_bitwise_matches_table(data):
    crc = 0xFFFF
    for b in data:
        crc = P.crc16_update_byte(crc, b)
    assert crc == P.crc16(data)


def test_request_layout_is_fixed():
    frame = P.encode_request(P.Request(P.CMD_WRITE, seq=7, addr=0x1000_0005, count=1,
                                       words=(0xDEADBEEF,)))
    assert frame[:9] == bytes([0xA5, 0x03, 7, 0x05, 0x00, 0x00, 0x10, 0x01, 0x00])
    assert frame[9:13] == bytes([0xEF, 0xBE, 0xAD, 0xDE])
    assert struct.unpack("<H", frame[13:])[0] == P.crc16(frame[1:13])
    assert len(frame) == P.request_bytes(P.CMD_WRITE, 1)


@given(st.sampled_from([P.CMD_PING, P.CMD_READ, P.CMD_WRITE]), st.integers(0, 255),
       st.integers(0, P.ADDR_LIMIT - 64), words_st)
def test_request_roundtrip(cmd, seq, addr, words):
    count = 0 if cmd == P.CMD_PING else len(words)
    req = P.Request(cmd, seq, addr if cmd != P.CMD_PING else 0, count,
                    tuple(words) if cmd == P.CMD_WRITE else ())
    frame = P.encode_request(req)
    assert len(frame) == P.request_bytes(cmd, count)
    assert P.decode_request(frame) == req


@given(st.integers(0, 7), st.sampled_from([1, 2, 3]), st.integers(0, 255),
       st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_response_roundtrip(status, cmd, seq, words):
    resp = P.Response(status, cmd, seq, tuple(words))
    assert P.decode_response(P.encode_response(resp)) == resp


@given(words_st, st.data())
def test_corrupted_response_is_rejected(words, data):
    frame = bytearray(P.encode_response(P.Response(0, P.CMD_READ, 3, tuple(words))))
    pos = data.draw(st.integers(1, len(frame) - 1))
    flip = data.draw(st.integers(1, 255))
    frame[pos] ^= flip
    parser = P.ResponseParser()
    got = parser.feed(frame)
    # A CRC-16 catches every error confined to one byte.
    assert got == []
    with pytest.raises(P.ProtocolError):
        P.decode_response(frame)


@given(words_st, st.data())
def test_corrupted_request_is_rejected(words, data):
    frame = bytearray(P.encode_request(P.Request(P.CMD_WRITE, 1, 0x40, len(words), tuple(words))))
    pos = data.draw(st.integers(1, len(frame) - 1))
    frame[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(P.ProtocolError):
        P.decode_request(frame)


def test_truncated_frames_are_rejected():
    frame = P.encode_response(P.Response(0, P.CMD_READ, 1, (1, 2, 3)))
    for n in range(len(frame)):
        parser = P.ResponseParser()
        assert parser.feed(frame[:n]) == []
    with pytest.raises(P.ProtocolError):
        P.decode_request(P.encode_request(P.Request(P.CMD_READ, 0, 0, 4))[:-1])


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 255),
                          st.lists(st.integers(0, 2**32 - 1), max_size=5)), max_size=6),
       st.binary(max_size=8), st.integers(1, 7))
def test_parser_resynchronises_on_a_stream(frames, junk, chunk):
    # Frames separated by junk (without the sync byte), fed in arbitrary chunks.
    junk = bytes(b for b in junk if b != P.SYNC_RESP)
    stream = b""
    expected = []
    for status, seq, words in frames:
        resp = P.Response(status, P.CMD_READ, seq, tuple(words))
        expected.append(resp)
        stream += junk + P.encode_response(resp)
    parser = P.ResponseParser()
    got = []
    for i in range(0, len(stream), chunk):
        got += parser.feed(stream[i:i + chunk])
    assert got == expected
    assert parser.pending == 0


def test_encode_request_validates():
    with pytest.raises(ValueError, match="cmd"):
        P.encode_request(P.Request(9))
    with pytest.raises(ValueError, match="count must be at least 1"):
        P.encode_request(P.Request(P.CMD_READ, count=0))
    with pytest.raises(ValueError, match="max_words"):
        P.encode_request(P.Request(P.CMD_READ, count=300), max_words=256)
    with pytest.raises(ValueError, match="30-bit"):
        P.encode_request(P.Request(P.CMD_READ, addr=P.ADDR_LIMIT - 1, count=2))
    with pytest.raises(ValueError, match="carries 1 words but count is 2"):
        P.encode_request(P.Request(P.CMD_WRITE, count=2, words=(1,)))
    with pytest.raises(ValueError, match="32-bit"):
        P.encode_request(P.Request(P.CMD_WRITE, count=1, words=(1 << 32,)))


# Device model ----------------------------------------------------------------------------------

class Mem:
    def __init__(self, size=1024):
        self.data = [0] * size
        self.writes = 0

    def read(self, addr):
        if addr >= len(self.data):
            raise P.DeviceModel.BusError()
        return self.data[addr]

    def write(self, addr, value):
        if addr >= len(self.data):
            raise P.DeviceModel.BusError()
        self.writes += 1
        self.data[addr] = value


def _device(**kw):
    mem = Mem()
    return mem, P.DeviceModel(mem.read, mem.write, clk_hz=48_000_000, **kw)


def test_model_ping_read_write():
    mem, dev = _device()
    (r,) = P.ResponseParser().feed(dev.feed(P.encode_request(P.Request(P.CMD_PING, 9))))
    assert r == P.Response(0, P.CMD_PING, 9, (P.MAGIC, (P.VERSION << 16) | 256, 48_000_000))
    out = dev.feed(P.encode_request(P.Request(P.CMD_WRITE, 1, 10, 3, (5, 6, 7))))
    assert P.decode_response(out) == P.Response(0, P.CMD_WRITE, 1, ())
    assert mem.data[10:13] == [5, 6, 7]
    out = dev.feed(P.encode_request(P.Request(P.CMD_READ, 2, 9, 5)))
    assert P.decode_response(out).words == (0, 5, 6, 7, 0)
    out = dev.feed(P.encode_request(P.Request(P.CMD_READ, 3, 1022, 4)))
    assert P.decode_response(out) == P.Response(P.STATUS_BUS, P.CMD_READ, 3, ())


@given(words_st, st.data())
def test_model_naks_corrupted_write_without_touching_memory(words, data):
    mem, dev = _device()
    frame = bytearray(P.encode_request(P.Request(P.CMD_WRITE, 4, 0, len(words), tuple(words))))
    pos = data.draw(st.integers(1, len(frame) - 1))
    frame[pos] ^= data.draw(st.integers(1, 255))
    out = dev.feed(frame) + dev.idle()
    (resp,) = P.ResponseParser().feed(out)
    assert resp.status in P.RETRYABLE
    assert mem.writes == 0
    # The device is ready for the retry.
    out = dev.feed(P.encode_request(P.Request(P.CMD_WRITE, 4, 0, len(words), tuple(words))))
    assert P.decode_response(out).ok
    assert mem.data[:len(words)] == words


def test_model_truncated_frame_times_out():
    mem, dev = _device()
    frame = P.encode_request(P.Request(P.CMD_WRITE, 4, 0, 2, (1, 2)))
    assert dev.feed(frame[:7]) == b""
    assert P.decode_response(dev.idle()) == P.Response(P.STATUS_TIMEOUT, P.CMD_WRITE, 4, ())
    assert dev.idle() == b""   # idle with nothing pending says nothing


def test_model_resent_write_is_not_repeated():
    mem, dev = _device()
    req = P.encode_request(P.Request(P.CMD_WRITE, 8, 0, 1, (1,)))
    assert P.decode_response(dev.feed(req)).ok
    mem.data[0] = 99            # a change the duplicate must not undo
    assert P.decode_response(dev.feed(req)).ok
    assert mem.data[0] == 99 and mem.writes == 1
    # A PING in between forgets it.
    dev.feed(P.encode_request(P.Request(P.CMD_PING, 9)))
    assert P.decode_response(dev.feed(req)).ok
    assert mem.data[0] == 1 and mem.writes == 2
