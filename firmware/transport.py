"""The host's view of an accelerator: one abstract interface, several backends.

In the manner of Glasgow's applets, the driver (``firmware/driver.py``) is written once against
``Transport`` and runs unchanged on Amaranth's Python simulator (``firmware/sim_transport.py``),
the compiled simulator (``firmware/cxxrtl_sim.py``) and a board behind a UART bridge
(``firmware/serial_transport.py``). A transport moves 32-bit words to and from the SoC's Wishbone
bus (word addresses: main memory at word 0, the CSR block at word ``0x1000_0000``) and waits for the
accelerator's interrupt.

The driver awaits only the transport's methods, never an event loop primitive of its own, so the
same coroutines run under ``asyncio.run`` or any other coroutine runner.
"""

import abc


__all__ = ["Transport", "TransportError", "resolve_dut"]


class TransportError(Exception):
    """A transport failed to reach the device (bus error, link down, timeout of the link itself)."""


class Transport(abc.ABC):
    """Abstract host interface to one accelerator SoC.

    Members
    -------
    fmax_hz : float or None
        Clock frequency of the device, used to turn cycle counts into images/s. ``None`` in pure
        simulation, where no clock frequency is meaningful.
    """

    fmax_hz = None

    @abc.abstractmethod
    async def write_words(self, addr: int, words) -> None:
        """Write ``words`` (an iterable of 32-bit integers) at consecutive Wishbone word addresses
        starting at ``addr``."""

    @abc.abstractmethod
    async def read_words(self, addr: int, count: int) -> list:
        """Read ``count`` 32-bit words from consecutive Wishbone word addresses starting at
        ``addr``."""

    @abc.abstractmethod
    async def wait_irq(self, timeout_cycles: int) -> bool:
        """Wait until the SoC's ``irq`` is high; ``True`` if it rose, ``False`` after
        ``timeout_cycles`` device cycles (simulators run cycles, the serial transport polls
        STATUS for the equivalent wall-clock time)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the device (stop the simulator, close the port)."""

    # Conveniences built on the abstract methods; backends may override them for speed.
    async def write_word(self, addr: int, value: int) -> None:
        await self.write_words(addr, [value])

    async def read_word(self, addr: int) -> int:
        (value,) = await self.read_words(addr, 1)
        return value

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def resolve_dut(dut, transport_name):
    """The design a simulation transport runs: ``dut`` itself, a factory's result, or
    ``accel.soc.SoC(config)`` for an ``AccelConfig``; it must have ``host`` and ``irq`` ports."""
    from contract.config import AccelConfig
    if isinstance(dut, AccelConfig):
        from accel.soc import SoC
        dut = SoC(dut)
    elif callable(dut) and not hasattr(dut, "elaborate"):
        dut = dut()                           # a factory of the design
    for name in ("host", "irq"):
        if not hasattr(dut, name):
            raise TypeError(f"{transport_name}: dut must have a '{name}' port, "
                            f"{type(dut).__name__} has none")
    return dut
