"""What the gateware and the host agree on, in one place that both import and that imports neither.

- :mod:`contract.config`: the accelerator's sizes (``AccelConfig``), the local buffer ids and the
  named configurations of the boards.
- :mod:`contract.isa`: the program format (8-word layer descriptors).
- :mod:`contract.registers`: the control/status register map, from which the register block,
  ``docs/REGISTERS.md``, ``firmware/regs.h`` and ``firmware/regs.py`` are generated.
- :mod:`contract.errors`: the error codes of the status register.
- :mod:`contract.protocol`: the framed serial protocol of the UART bridge and its host codec.

Nothing here imports ``accel``, ``firmware``, ``model``, ``platforms`` or ``bench``.
"""
