"""Numeric limits the fit checks and the program emission share: descriptor field maxima, the
threshold range and the largest LOAD."""

from contract import isa
from contract.config import THR_BITS

__all__ = ["THR_MAX", "THR_MIN", "V_THR_LIMIT", "MAX_LOAD_COUNT", "field_max"]


THR_MAX = (1 << (THR_BITS - 1)) - 1        # 32767: a threshold that is never passed
THR_MIN = -(1 << (THR_BITS - 1))
V_THR_LIMIT = THR_MAX - 1                 # |v| <= 32766 keeps 32767 unreachable
MAX_LOAD_COUNT = 1 << 15                  # lanes per LOAD descriptor (count is 16 bits)


def field_max(name):
    """The largest value the descriptor field ``name`` (``contract.isa``) holds."""
    return (1 << isa.FIELD_BY_NAME[name].width) - 1
