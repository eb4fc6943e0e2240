"""How many table channels each image channel's embedding takes (ARCHITECTURE 3.6, "Embeddings
wider than a table entry").

A table entry is ``EMB_ENTRY_BITS`` (16) bits and the descriptor's ``emb_d`` field holds at most 15
codes, so an embedding of ``d*q > 16`` bits (d = 16, Q = 2) or ``d > 15`` codes does not fit one
entry. The unit looks every table channel up in the same cycle, and table channel ``c'`` fills
lanes ``c'*emb_d .. (c'+1)*emb_d - 1``. So an image channel split over ``s`` table channels, each
holding ``d/s`` consecutive codes of its entry, fills exactly the lanes ``c*d + j`` the unsplit
embedding would, when the host sends each of its bytes ``s`` times (image channel ``c`` becomes
channels ``c*s .. c*s + s - 1``). The EMBED still takes one pixel per cycle; the image costs ``s``
times its bytes in main memory and on the link.
"""

from contract.config import EMB_ENTRY_BITS

from .limits import field_max

__all__ = ["table_split"]


def table_split(d, q):
    """The fewest table channels ``s`` (a divisor of ``d``) whose ``d/s`` codes of ``q`` bits fit
    one table entry and the ``emb_d`` field: 1 when the embedding fits as it is.

    Parameters
    ----------
    d, q : int
        The embed layer's codes per image channel and bits per code (both >= 1).

    Returns
    -------
    int or None
        ``s``, or None when no divisor of ``d`` fits (``q`` itself wider than an entry).
    """
    for s in range(1, d + 1):
        if d % s == 0 and d // s <= field_max("emb_d") and (d // s) * q <= EMB_ENTRY_BITS:
            return s
    return None
