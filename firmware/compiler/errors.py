"""The compiler's one error: a network that does not fit the configuration."""

__all__ = ["CompileError", "layer_error"]


class CompileError(Exception):
    """A network that does not fit the configuration; the message is one line naming the layer."""


def layer_error(layer, why):
    """The :class:`CompileError` ``"layer <name>: <why>"`` for a deploy layer dict (raise it)."""
    return CompileError(f"layer {layer['name']}: {why}")
