"""Batch programs: many images from one start of the accelerator.

A :class:`BatchProgram` extends a :class:`~.compiled_model.CompiledModel`'s memory image (which it
leaves as it is: parameters, the one-image program and its input and output regions) with, from
``window_limit`` on:

- the load program: the parameter LOADs of ``prog_load_addr``'s program, then END (run once,
  before the first batch, so that a batch's CYCLES count its images only);
- the batch program: one block per image slot (the per-image descriptors, END excluded, with the
  input and output addresses of that slot), then END;
- ``size`` input regions, back to back (one upload for the whole batch);
- ``size`` output regions, back to back (one read-back for the whole batch).

The blocks are in reverse slot order: block ``j`` runs slot ``size - 1 - j``, so the last ``k``
blocks run slots ``k - 1`` down to 0 and a batch of ``k <= size`` images starts at
:meth:`BatchProgram.entry` ``(k)`` with no new program upload (a short last batch).

Everything else in the per-image program (weights, thresholds, the residual scratch area, dump
regions) keeps its address: the images run one after the other, so they can share it (a dump
region holds the last image's maps, slot 0's).
"""

from dataclasses import dataclass, field

import numpy as np

from contract import isa

from .errors import CompileError

__all__ = ["BatchProgram", "batch_layout_words", "max_batch_size", "compile_batch"]

_MEMORY_OPS = (isa.Op.LOAD, isa.Op.STORE, isa.Op.EMBED)


def _split_program(compiled):
    """``(load, image)``: the descriptors of the parameter-load part and of the per-image part
    (END excluded), as ``compiled.descriptors`` entries."""
    load = [d for d in compiled.descriptors if d["addr"] < compiled.prog_image_addr]
    image = [d for d in compiled.descriptors
             if d["addr"] >= compiled.prog_image_addr and d["fields"].get("op") != isa.Op.END]
    return load, image


def _words_per_image(compiled, n_image_descriptors):
    return (n_image_descriptors * isa.DESCRIPTOR_WORDS + int(compiled.input_words)
            + int(compiled.output_words))


def batch_layout_words(compiled, size):
    """Main-memory words from ``window_base`` up to the end of a batch of ``size`` images: the
    compiled image, the load program, the batch program, ``size`` inputs and ``size`` outputs."""
    load, image = _split_program(compiled)
    fixed = int(compiled.window_limit) - int(compiled.window_base) \
        + (len(load) + 2) * isa.DESCRIPTOR_WORDS                  # two ENDs
    return fixed + size * _words_per_image(compiled, len(image))


def max_batch_size(compiled):
    """The largest batch whose program, inputs and outputs fit main memory after the compiled
    image (0 when not even one does)."""
    _, image = _split_program(compiled)
    free = int(compiled.config.mem_words) - int(compiled.window_base) \
        - batch_layout_words(compiled, 0)
    return max(0, free // _words_per_image(compiled, len(image)))


@dataclass
class BatchProgram:
    """A batch program and its memory layout (see the module's description).

    Members
    -------
    compiled : CompiledModel
        The model whose memory image it extends.
    size : int
        Image slots.
    program_addr : int
        First word of the layout: the load program (the parameter LOADs, END); run it once
        before the first batch.
    blocks_addr, block_words : int
        Where block 0 (slot ``size - 1``) starts, and the words of one block.
    input_addr, output_addr : int
        Slot 0's input and output regions; slot ``i``'s are ``i * input_words`` and
        ``i * output_words`` further.
    input_words, output_words : int
        Words of one image's input and output (the compiled model's).
    window_limit : int
        First word after the layout (WINDOW_LIMIT for a batch run).
    words : numpy.ndarray
        uint32 words to write at ``program_addr``: the load program and the batch program.
    descriptors : list of dict
        Per descriptor of both: ``addr``, ``fields``, ``note`` (``"image i: ..."`` in a block).
    """
    compiled: object
    size: int
    program_addr: int
    blocks_addr: int
    block_words: int
    input_addr: int
    output_addr: int
    input_words: int
    output_words: int
    window_limit: int
    words: np.ndarray = field(repr=False)
    descriptors: list = field(default_factory=list, repr=False)

    @property
    def load_addr(self):
        """Word address of the load program (the parameter LOADs, END)."""
        return self.program_addr

    def entry(self, count):
        """Word address to start at to run slots ``0 .. count - 1`` (the parameters loaded)."""
        if not isinstance(count, int) or not 1 <= count <= self.size:
            raise ValueError(f"a batch program of {self.size} slots runs 1 to {self.size} images, "
                             f"not {count!r}")
        return self.blocks_addr + (self.size - count) * self.block_words

    def input_slot(self, slot):
        """Word address of slot ``slot``'s input region."""
        return self.input_addr + slot * self.input_words

    def output_slot(self, slot):
        """Word address of slot ``slot``'s output region."""
        return self.output_addr + slot * self.output_words

    def summary(self):
        """One line: slots, descriptors, and the layout's extent."""
        return (f"batch of {self.size}: {len(self.descriptors)} descriptors at {self.program_addr}, "
                f"inputs at {self.input_addr} ({self.size} x {self.input_words} words), outputs at "
                f"{self.output_addr} ({self.size} x {self.output_words} words), up to word "
                f"{self.window_limit}")


def _relocate(fields, compiled, slot, input_addr, output_addr):
    """A per-image descriptor's fields with the input and output region moved to ``slot``'s."""
    fields = dict(fields)
    if fields.get("op") in _MEMORY_OPS and "mem_addr" in fields:
        a = int(fields["mem_addr"])
        if compiled.input_addr <= a < compiled.input_addr + compiled.input_words:
            fields["mem_addr"] = a - compiled.input_addr + input_addr + slot * compiled.input_words
        elif compiled.output_addr <= a < compiled.output_addr + compiled.output_words:
            fields["mem_addr"] = a - compiled.output_addr + output_addr + slot * compiled.output_words
    return fields


def compile_batch(compiled, size):
    """The :class:`BatchProgram` of ``size`` images for a compiled model.

    Raises
    ------
    ValueError
        ``size`` is not a positive integer.
    CompileError
        One line: the memory the batch needs, main memory's size and the largest batch that fits.
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"the batch size must be a positive integer, not {size!r}")
    size = int(size)
    mem_words = int(compiled.config.mem_words)
    need = batch_layout_words(compiled, size)
    if int(compiled.window_base) + need > mem_words:
        raise CompileError(f"a batch of {size} images needs {need} words of main memory from word "
                           f"{int(compiled.window_base)}, main memory has {mem_words} words; the "
                           f"largest batch that fits is {max_batch_size(compiled)}")
    load, image = _split_program(compiled)
    D = isa.DESCRIPTOR_WORDS
    program_addr = int(compiled.window_limit)
    blocks_addr = program_addr + (len(load) + 1) * D
    block_words = len(image) * D
    end_addr = blocks_addr + size * block_words
    input_addr = end_addr + D
    output_addr = input_addr + size * int(compiled.input_words)
    window_limit = output_addr + size * int(compiled.output_words)
    rows = [(d["fields"], d["note"]) for d in load] + [(dict(op=isa.Op.END), "end of the load")]
    for block in range(size):
        slot = size - 1 - block
        rows += [(_relocate(d["fields"], compiled, slot, input_addr, output_addr),
                  f"image {slot}: {d['note']}") for d in image]
    rows.append((dict(op=isa.Op.END), "end"))
    descriptors = [dict(addr=program_addr + i * D, fields=f, note=note)
                   for i, (f, note) in enumerate(rows)]
    words = np.asarray([isa.pack(**f) for f, _ in rows], np.uint32).reshape(-1)
    return BatchProgram(compiled=compiled, size=size, program_addr=program_addr,
                        blocks_addr=blocks_addr, block_words=block_words, input_addr=input_addr,
                        output_addr=output_addr, input_words=int(compiled.input_words),
                        output_words=int(compiled.output_words), window_limit=window_limit,
                        words=words, descriptors=descriptors)
