"""``python -m platforms``: list the boards."""

from . import list_boards

print(list_boards())
