"""Boards the accelerator is built for (wrapping amaranth-boards platforms).

``get_board(name)`` returns a :class:`platforms.boards.Board`; ``board_names()`` lists the valid
names; ``python -m platforms`` (or ``python -m accel.build --list-boards``) prints them.
"""

from .boards import Board, BOARDS, ALIASES, DEFAULT_BOARD


__all__ = ["Board", "BOARDS", "ALIASES", "DEFAULT_BOARD", "get_board", "board_names",
           "UnknownBoardError", "list_boards"]


class UnknownBoardError(ValueError):
    """An unknown board name; the message is one line listing the valid names."""


def board_names():
    """Valid board names, aliases included."""
    return sorted(BOARDS) + sorted(ALIASES)


def get_board(name):
    """The :class:`Board` called ``name`` (case-insensitive; ``ecp5`` is the default ULX3S-85F)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in BOARDS:
        raise UnknownBoardError(f"unknown board {name!r}; valid boards: {', '.join(board_names())}")
    return BOARDS[key]


def list_boards():
    """One line per board: name, device, package, configuration, array, clock."""
    lines = [f"{'board':<20} {'device':<13} {'package':<7} {'config':<8} {'array':<6} clock"]
    lines += [BOARDS[name].summary() for name in sorted(BOARDS)]
    lines += [f"{alias:<20} alias of {target}" for alias, target in sorted(ALIASES.items())]
    return "\n".join(lines)
