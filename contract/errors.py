"""Error codes of the accelerator (``ERROR.code`` register, the DMA's and engine's ``error`` ports).

One table shared by the gateware, the generated register documentation and headers
(``contract/registers.py``) and the host driver. Code 0 means no error; codes fit in 4 bits.
"""

from enum import IntEnum


__all__ = ["ErrorCode", "ERROR_BITS"]


ERROR_BITS = 4


class ErrorCode(IntEnum):
    """Error codes; ``code.doc`` is a one-line description."""
    OK = 0
    BAD_OPCODE = 1
    WINDOW = 2
    BUS_ERROR = 3
    LOCAL_RANGE = 4
    BAD_DESCRIPTOR = 5
    ABORTED = 6
    TIMEOUT = 7

    @property
    def doc(self):
        return _DOCS[self]


_DOCS = {
    ErrorCode.OK: "no error",
    ErrorCode.BAD_OPCODE: "unknown descriptor opcode or DMA command kind",
    ErrorCode.WINDOW: "main-memory access outside [WINDOW_BASE, WINDOW_LIMIT), refused before any access",
    ErrorCode.BUS_ERROR: "a Wishbone transfer ended with err",
    ErrorCode.LOCAL_RANGE: "local address outside its buffer, or an unknown buffer id",
    ErrorCode.BAD_DESCRIPTOR: "a descriptor field out of range for the engine or the configuration",
    ErrorCode.ABORTED: "the run was stopped by CTRL.abort",
    ErrorCode.TIMEOUT: "a unit did not finish within its time limit",
}

assert set(_DOCS) == set(ErrorCode)
assert max(ErrorCode) < (1 << ERROR_BITS)
