"""Register copies of a signal that every output row needs, one per group of rows."""

from amaranth.hdl import Signal, Value

from .synthesis import KEEP_COPY


__all__ = ["ROWS_PER_COPY", "row_copies"]


# Outputs served by one register copy of a signal every output needs (res_in, the threshold being
# loaded): one register for all rows is a route across the array.
ROWS_PER_COPY = 8


def row_copies(m, rows, name, value, reset_less=False):
    """Register copies of ``value`` (one cycle behind it), kept apart in synthesis.

    Parameters
    ----------
    m : Module
        The module the registers are added to (``sync`` domain).
    rows : int
        Number of rows served.
    name : str
        Base name of the copies (``<name>_g<group>``).
    value : Value
        What each copy registers.
    reset_less : bool
        Copies without reset (for data read only behind a valid flag).

    Returns
    -------
    list of Signal
        The copy serving each row: one per ``ROWS_PER_COPY`` rows.
    """
    copies = []
    for g in range(-(-rows // ROWS_PER_COPY)):
        r = Signal(Value.cast(value).shape(), name=f"{name}_g{g}", reset_less=reset_less,
                   attrs=KEEP_COPY)
        m.d.sync += r.eq(value)
        copies.append(r)
    return [copies[o // ROWS_PER_COPY] for o in range(rows)]
