"""The board's serial link, modelled from the bridge's frame format (``contract/protocol.py``).

The driver (``firmware/driver.py``) runs a batch of ``k`` images (``run_batch``; ``k = 1`` is
``run_image`` without profiling: the same transactions) as these transactions, in series:

1. WRITE of the ``k`` inputs (``k * input_words`` words, split into frames of ``max_words``);
2. WRITE of PROG_ADDR, WRITE of CTRL (start): one word each;
3. READ of STATUS (one word) every poll period until done or error (``SerialTransport.wait_irq``:
   a READ, then ``poll_interval`` seconds of sleep);
4. READ of STATUS (the driver's check of done and error);
5. READ of the ``k`` outputs (``k * output_words`` words, in frames of ``max_words``);
6. READ of CYCLES, MAC_BUSY, LAYER_SEL, LAYER_CYCLES, PC and SCRATCH (six consecutive words:
   the counters and the mark by which the driver notices a board reset).

Every transaction is a request frame and a response frame (``protocol.request_bytes`` and
``protocol.response_bytes``); a byte on the line is 10 bit times (8N1). The model counts bytes on
the wire and their time at the baud rate; it leaves out the USB adapter's latency per transaction
(an FTDI's latency timer, 1 to 16 ms, can dominate a short READ) and the host's own time, so its
images/s is an upper bound for this protocol. ``transactions`` says how many round trips a batch
costs.

End-to-end time per batch: the driver does the steps in series, so it is the link time of steps
1, 2 and 4 to 6, plus the wait of step 3 (the accelerator's time rounded up to whole poll periods,
plus the last poll). ``overlapped`` is what double-buffered inputs would give (the next batch's
upload while the accelerator runs): the larger of the link time and the accelerator time; the
driver does not do that.
"""

import math
from dataclasses import dataclass

from contract import protocol as P

__all__ = ["BITS_PER_BYTE", "transfer_bytes", "LinkBatch", "batch_link"]

BITS_PER_BYTE = 10        # 8N1: start bit, 8 data bits, stop bit


def transfer_bytes(cmd, words, max_words=P.DEFAULT_MAX_WORDS):
    """``(bytes to the device, bytes from the device, transactions)`` of a READ or WRITE of
    ``words`` words, split into frames of at most ``max_words`` words as
    ``SerialTransport`` does."""
    if cmd not in (P.CMD_READ, P.CMD_WRITE):
        raise ValueError(f"cmd must be CMD_READ or CMD_WRITE, not {cmd!r}")
    if not isinstance(words, int) or words < 0:
        raise ValueError(f"words must be a non-negative integer, not {words!r}")
    if not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"max_words must be a positive integer, not {max_words!r}")
    to_device = from_device = frames = 0
    for start in range(0, words, max_words):
        n = min(max_words, words - start)
        to_device += P.request_bytes(cmd, n)
        from_device += P.response_bytes(cmd, n)
        frames += 1
    return to_device, from_device, frames


@dataclass
class LinkBatch:
    """The modelled link cost of one batch.

    Members
    -------
    images : int
    to_device, from_device : dict of str to int
        Bytes per step: ``upload``, ``start``, ``poll``, ``status``, ``readback``, ``counters``.
    transactions : int
        Round trips (request and response frames) of the batch.
    polls : int
        STATUS reads while waiting.
    payload_bytes : int
        Bytes of inputs and outputs (the data the batch needs to move).
    link_s : float
        Wire time of every step except the polling.
    wait_s : float
        Step 3: the accelerator's time in whole poll periods, plus the last poll.
    accelerator_s : float
        The accelerator's time (cycles / clock).
    """
    images: int
    to_device: dict
    from_device: dict
    transactions: int
    polls: int
    payload_bytes: int
    link_s: float
    wait_s: float
    accelerator_s: float

    @property
    def total_bytes(self):
        """Bytes on the wire, both directions, polling included."""
        return sum(self.to_device.values()) + sum(self.from_device.values())

    @property
    def efficiency(self):
        """Framing efficiency: payload bytes over all bytes on the wire."""
        return self.payload_bytes / self.total_bytes

    @property
    def series_s(self):
        """Time per batch as the driver runs it: link steps and the wait, one after the other."""
        return self.link_s + self.wait_s

    @property
    def overlapped_s(self):
        """Time per batch if the link and the accelerator overlapped (not done by the driver)."""
        return max(self.link_s, self.accelerator_s)

    @property
    def images_per_s_series(self):
        return self.images / self.series_s

    @property
    def images_per_s_overlapped(self):
        return self.images / self.overlapped_s

    @property
    def images_per_s_accelerator(self):
        return self.images / self.accelerator_s if self.accelerator_s else math.inf


def batch_link(images, input_words, output_words, *, baud, cycles=0, clock_hz=None,
               max_words=P.DEFAULT_MAX_WORDS, poll_interval=0.002, polls=None):
    """The :class:`LinkBatch` of one batch run by the driver (module description).

    Parameters
    ----------
    images : int
        Images in the batch.
    input_words, output_words : int
        Words of one image's input and output (``CompiledModel.input_words``, ``output_words``).
    baud : int
        Line rate (bits per second).
    cycles : int
        The accelerator's cycles for the batch (CYCLES), and ``clock_hz`` its clock.
    max_words : int
        The bridge's largest frame (words; its PING answer).
    poll_interval : float
        Seconds the host sleeps between STATUS reads (``SerialTransport.poll_interval``).
    polls : int, optional
        STATUS reads while waiting; default from the accelerator's time and the poll period.
    """
    for name, value in (("images", images), ("baud", baud)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if cycles and not clock_hz:
        raise ValueError("cycles need clock_hz to become seconds")
    accelerator_s = cycles / clock_hz if cycles else 0.0
    byte_s = BITS_PER_BYTE / baud
    R, W = P.CMD_READ, P.CMD_WRITE
    steps = {"upload": transfer_bytes(W, images * input_words, max_words),
             "start": tuple(a + b for a, b in zip(transfer_bytes(W, 1, max_words),
                                                  transfer_bytes(W, 1, max_words))),
             "status": transfer_bytes(R, 1, max_words),
             "readback": transfer_bytes(R, images * output_words, max_words),
             "counters": transfer_bytes(R, 6, max_words)}
    poll_to, poll_from, _ = transfer_bytes(R, 1, max_words)
    poll_s = (poll_to + poll_from) * byte_s
    period = poll_s + poll_interval
    if polls is None:
        polls = 1 + math.ceil(accelerator_s / period)
    to_device = {k: v[0] for k, v in steps.items()}
    from_device = {k: v[1] for k, v in steps.items()}
    to_device["poll"], from_device["poll"] = polls * poll_to, polls * poll_from
    link_s = sum(to_device[k] + from_device[k] for k in steps) * byte_s
    wait_s = (polls - 1) * period + poll_s
    return LinkBatch(images=images, to_device=to_device, from_device=from_device,
                     transactions=sum(v[2] for v in steps.values()) + polls, polls=polls,
                     payload_bytes=4 * images * (input_words + output_words), link_s=link_s,
                     wait_s=wait_s, accelerator_s=accelerator_s)
