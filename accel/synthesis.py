"""What the gateware asks of synthesis beyond Amaranth's default Yosys flow.

Register duplication. A register that drives many loads spread over the die is a long route; a
copy per group of loads keeps each route short. But Yosys' ``opt_merge`` merges registers with the
same input (copies that differ only in their initial value are merged bit by bit), and Amaranth
0.5 puts a signal's attributes on its wire, not on the flip-flop cell, so ``keep`` on the signal
does not stop it. Gateware marks such registers with :data:`KEEP_COPY` instead.

Memories without read-write collisions. Amaranth's read port returns the old word when the write
port writes the addressed word in the same cycle; an ECP5 block RAM's read of a word its other
port writes is undefined, so Yosys emulates the old word with soft logic after the block RAM (a
register of the write data, an address comparison and a multiplexer on every read-data bit). A
memory whose reads never need the word written in the same cycle says so with
:data:`NO_COLLISIONS` (a ``Memory`` attribute; one read and one write port): the collision
result becomes undefined and the block RAM's read data is used as it is.

Every flow that synthesises the gateware runs :data:`YOSYS_SCRIPT_AFTER_READ` right after reading
the design.
"""

__all__ = ["KEEP_COPY", "NO_COLLISIONS", "YOSYS_KEEP_COPIES", "YOSYS_NO_COLLISIONS",
           "YOSYS_SCRIPT_AFTER_READ"]


# Attributes of a ``Signal`` whose register must stay a separate flip-flop.
KEEP_COPY = {"accel_keep_copy": 1}

# Attributes of a ``Memory`` (one read port, one write port) whose reads never need the word
# written in the same cycle. (Yosys' own ``no_rw_check`` attribute only acts when it merges a
# register into an asynchronous read port; Amaranth's ports are synchronous already.)
NO_COLLISIONS = {"accel_no_collisions": 1}

# Yosys commands, run after ``read_rtlil`` (Amaranth emits its registers as $dff/$adff cells).
YOSYS_KEEP_COPIES = "setattr -set keep 1 a:accel_keep_copy %ci1:+$dff,$adff[Q]"
# The memories become $mem_v2 cells (with their attributes; memory_collect skips modules with
# processes, hence proc first) and their read port's collision
# with the write port is marked undefined (RD_COLLISION_X_MASK: one bit per read/write pair).
YOSYS_NO_COLLISIONS = ("proc; memory_collect; setparam -set RD_COLLISION_X_MASK 1'1 "
                       "t:$mem_v2 a:accel_no_collisions %i")
YOSYS_SCRIPT_AFTER_READ = f"{YOSYS_KEEP_COPIES}\n{YOSYS_NO_COLLISIONS}"
