"""What the gateware asks of synthesis beyond Amaranth's default Yosys flow.

Register duplication. A register that drives many loads spread over the die is a long route; a
copy per group of loads keeps each route short. But Yosys' ``opt_merge`` merges registers with the
same input (copies that differ only in their initial value are merged bit by bit), and Amaranth
0.5 puts a signal's attributes on its wire, not on the flip-flop cell, so ``keep`` on the signal
does not stop it. Gateware marks such registers with :data:`KEEP_COPY` instead, and every flow that
synthesises it runs :data:`YOSYS_KEEP_COPIES` right after reading the design: it sets ``keep`` on
the flip-flop cells that drive the marked wires.
"""

__all__ = ["KEEP_COPY", "YOSYS_KEEP_COPIES"]


# Attributes of a ``Signal`` whose register must stay a separate flip-flop.
KEEP_COPY = {"accel_keep_copy": 1}

# Yosys commands, run after ``read_rtlil`` (Amaranth emits its registers as $dff/$adff cells).
YOSYS_KEEP_COPIES = "setattr -set keep 1 a:accel_keep_copy %ci1:+$dff,$adff[Q]"
