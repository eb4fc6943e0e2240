"""The accelerator's control/status register map: one declarative table, ``REGISTERS``.

Everything else derives from it: the Wishbone register block (``accel/csr.py``, ``CSRBank``), the
reference ``docs/REGISTERS.md``, the C header ``firmware/regs.h`` and the Python constants
``firmware/regs.py`` used by the host driver. Regenerate the three files with::

    python -m contract.registers

Offsets are byte offsets from the CSR block base ``CSR_BASE`` (byte address ``0x4000_0000``, word
address ``0x1000_0000``). Registers are 32 bits wide and accessed as whole words.

Access kinds
------------
``RO``  read-only: the value comes from the hardware (or is a constant of the configuration);
        writes are ignored.
``RW``  read/write: a register in the CSR block, read back as written (byte enables honoured).
``W1``  write strobe: writing produces a one-cycle pulse per field whose written bits are not all
        zero; reads return 0.
"""

import enum
from dataclasses import dataclass, field as dc_field

from .errors import ErrorCode
from .isa import ISA_VERSION


__all__ = ["Access", "Field", "Register", "REGISTERS", "REG_BY_NAME", "CSR_BASE", "ID_VALUE",
           "MAX_PROFILED_DESCRIPTORS",
           "HW_VERSION", "constants", "markdown", "c_header", "python_module", "write_all"]


CSR_BASE = 0x4000_0000
# Descriptors whose cycle counts the hardware keeps (LAYER_SEL / LAYER_CYCLES): the first 64 of a run.
MAX_PROFILED_DESCRIPTORS = 64
ID_VALUE = 0x5045_4131      # 'PEA1' read as a big-endian ASCII string
HW_VERSION = 1


class Access(enum.Enum):
    RO = "RO"
    RW = "RW"
    W1 = "W1"


@dataclass(frozen=True)
class Field:
    """A bit field ``[lsb, lsb + width)`` of a register."""
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def msb(self):
        return self.lsb + self.width - 1

    @property
    def mask(self):
        """The field's bits in place (shifted)."""
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register.

    A register without ``fields`` has a single 32-bit field named ``value``.
    """
    name: str
    offset: int
    access: Access
    doc: str
    fields: tuple = dc_field(default=())
    reset: int = 0

    def __post_init__(self):
        if not self.fields:
            object.__setattr__(self, "fields", (Field("value", 0, 32, self.doc),))
        if not isinstance(self.name, str) or not self.name.isidentifier() or self.name.upper() != self.name:
            raise ValueError(f"register name must be an upper-case identifier, not {self.name!r}")
        if not isinstance(self.access, Access):
            raise TypeError(f"register {self.name}: access must be an Access, not {self.access!r}")
        if not isinstance(self.offset, int) or self.offset < 0 or self.offset % 4:
            raise ValueError(f"register {self.name}: offset must be a non-negative multiple of 4, "
                             f"not {self.offset!r}")
        used = 0
        for f in self.fields:
            if not f.name.isidentifier() or f.name.lower() != f.name:
                raise ValueError(f"register {self.name}: field name must be a lower-case "
                                 f"identifier, not {f.name!r}")
            if f.width < 1 or f.lsb < 0 or f.msb > 31:
                raise ValueError(f"register {self.name}: field {f.name} outside bits [31:0]")
            if used & f.mask:
                raise ValueError(f"register {self.name}: field {f.name} overlaps another field")
            used |= f.mask
        if self.reset & ~used & 0xFFFF_FFFF or not 0 <= self.reset < 2**32:
            raise ValueError(f"register {self.name}: reset value {self.reset:#x} outside its fields")

    @property
    def word(self):
        """Word offset inside the CSR block."""
        return self.offset // 4

    @property
    def single(self):
        """True when the register is one field named ``value`` (its port is named after it)."""
        return len(self.fields) == 1 and self.fields[0].name == "value"

    def port_name(self, field):
        """Name of the ``CSRBank`` port of ``field`` (a :class:`Field` or field name)."""
        fname = field if isinstance(field, str) else field.name
        if self.single:
            return self.name.lower()
        return f"{self.name.lower()}_{fname}"


RO, RW, W1 = Access.RO, Access.RW, Access.W1

REGISTERS = (
    Register("ID", 0x00, RO, f"identification, always {ID_VALUE:#010x} ('PEA1')"),
    Register("VERSION", 0x04, RO, "ISA and hardware versions", (
        Field("hw", 0, 16, f"hardware revision ({HW_VERSION})"),
        Field("isa", 16, 16, f"descriptor ISA version ({ISA_VERSION})"),
    )),
    Register("CONFIG0", 0x08, RO, "configuration of this instance (contract/config.py), part 0", (
        Field("p_o", 0, 8, "output channels computed in parallel"),
        Field("p_i", 8, 8, "input channels consumed per cycle"),
        Field("a_planes", 16, 4, "activation bit-planes processed in parallel"),
        Field("n_code_banks", 20, 4, "number of code banks"),
        Field("acc_bits", 24, 8, "accumulator width"),
    )),
    Register("CONFIG1", 0x0C, RO, "configuration of this instance, part 1", (
        Field("res_bits", 0, 8, "residual lane width"),
        Field("log2_mem_words", 8, 8, "log2 of the main-memory size in 32-bit words"),
        Field("emb_channels", 16, 4, "image channels the embedding table holds"),
    )),
    Register("CTRL", 0x10, W1, "control strobes", (
        Field("start", 0, 1, "write 1: run the program at PROG_ADDR"),
        Field("abort", 1, 1, "write 1: stop the current run (ERROR.code = ABORTED)"),
    )),
    Register("STATUS", 0x14, RO, "run status", (
        Field("busy", 0, 1, "a program is running"),
        Field("done", 1, 1, "the last run has finished (successfully or not)"),
        Field("error", 2, 1, "the last run ended with an error (see ERROR)"),
    )),
    Register("ERROR", 0x18, RO, "error of the last run", (
        Field("code", 0, 8, "error code (table below), 0 = OK"),
        Field("pc", 16, 16, "index of the descriptor that failed"),
    )),
    Register("PROG_ADDR", 0x1C, RW, "word address of the first descriptor (read at start: a write "
                                    "during a run applies to the next run)"),
    Register("WINDOW_BASE", 0x20, RW, "first main-memory word the accelerator may access (read at "
                                      "start: a write during a run applies to the next run)"),
    Register("WINDOW_LIMIT", 0x24, RW, "main-memory words at or above this address are refused "
                                       "(exclusive limit; read at start: a write during a run "
                                       "applies to the next run)"),
    Register("CYCLES", 0x28, RO, "clock cycles of the last (or current) run"),
    Register("MAC_BUSY", 0x2C, RO, "cycles of the last run in which the MAC array accepted work"),
    Register("LAYER_SEL", 0x30, RW, "descriptor index whose cycle count LAYER_CYCLES shows "
             f"(the first {MAX_PROFILED_DESCRIPTORS} descriptors of a run are counted)"),
    Register("LAYER_CYCLES", 0x34, RO, "cycles spent on descriptor LAYER_SEL in the last run"),
    Register("PC", 0x38, RO, "index of the descriptor being executed"),
    Register("SCRATCH", 0x3C, RW, "software's: the driver writes a mark at load and reads it after each run "
             "(a board reset clears it to 0)"),
)

REG_BY_NAME = {r.name: r for r in REGISTERS}


def _check_table(registers):
    offsets, ports = {}, {}
    for r in registers:
        if r.offset in offsets:
            raise ValueError(f"registers {offsets[r.offset]} and {r.name} share offset {r.offset:#x}")
        offsets[r.offset] = r.name
        for f in r.fields:
            p = r.port_name(f)
            if p in ports:
                raise ValueError(f"port name {p} of {r.name} clashes with {ports[p]}")
            ports[p] = r.name


_check_table(REGISTERS)


def constants(config):
    """Values of the constant RO registers for ``config`` (an ``AccelConfig``).

    Pass the result as ``CSRBank(REGISTERS, constants=constants(config))``: these registers then
    need no input port.
    """
    log2_mem = config.mem_words.bit_length() - 1
    return {
        "ID": ID_VALUE,
        "VERSION": (ISA_VERSION << 16) | HW_VERSION,
        "CONFIG0": (config.p_o & 0xFF) | (config.p_i & 0xFF) << 8 | config.a_planes << 16
                   | config.n_code_banks << 20 | config.acc_bits << 24,
        "CONFIG1": config.res_bits | log2_mem << 8 | config.emb_channels << 16,
    }


# Generators -------------------------------------------------------------------------------------

_HEADER_NOTE = "Generated from contract/registers.py by `python -m contract.registers`; do not edit by hand."


def _bits(f):
    return f"[{f.msb}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"


def markdown(registers=REGISTERS):
    """The register reference as Markdown (``docs/REGISTERS.md``)."""
    out = ["# Control and status registers", "", _HEADER_NOTE, "",
           f"The CSR block is at byte address `{CSR_BASE:#010x}` (Wishbone word address "
           f"`{CSR_BASE >> 2:#010x}`). Registers are 32 bits, accessed as whole words; offsets are in "
           "bytes. Unmapped offsets read 0 and ignore writes (they are acknowledged, not errors).",
           "",
           "Access: `RO` read-only (writes ignored); `RW` read/write; `W1` write strobe (writing a 1 "
           "to a field triggers its action once; reads return 0).", "",
           "## Map", "",
           "| offset | name | access | reset | description |", "|---|---|---|---|---|"]
    for r in registers:
        reset = f"`{r.reset:#x}`" if r.access is RW else ""
        out.append(f"| `{r.offset:#04x}` | [{r.name}](#{r.name.lower()}) | {r.access.value} | {reset} | {r.doc} |")
    out.append("")
    for r in registers:
        out += [f"## {r.name}", "", f"Offset `{r.offset:#04x}`, {r.access.value}. {r.doc}.", ""]
        if not r.single:
            out += ["| bits | field | description |", "|---|---|---|"]
            for f in r.fields:
                out.append(f"| {_bits(f)} | `{f.name}` | {f.doc} |")
            out.append("")
    out += ["## Error codes (`ERROR.code`)", "", "| code | name | meaning |", "|---|---|---|"]
    for e in ErrorCode:
        out.append(f"| {int(e)} | `{e.name}` | {e.doc} |")
    return "\n".join(out) + "\n"


def c_header(registers=REGISTERS):
    """A C header with offsets, field shifts/masks and error codes (``firmware/regs.h``)."""
    out = [f"/* {_HEADER_NOTE} */", "#ifndef PEA_REGS_H", "#define PEA_REGS_H", "",
           f"#define PEA_CSR_BASE 0x{CSR_BASE:08x}u",
           f"#define PEA_ID_VALUE 0x{ID_VALUE:08x}u",
           f"#define PEA_HW_VERSION {HW_VERSION}u",
           f"#define PEA_ISA_VERSION {ISA_VERSION}u",
           f"#define PEA_MAX_PROFILED_DESCRIPTORS {MAX_PROFILED_DESCRIPTORS}u", "",
           "/* register byte offsets from PEA_CSR_BASE */"]
    for r in registers:
        out.append(f"#define PEA_{r.name} 0x{r.offset:02x}u  /* {r.access.value}: {r.doc} */")
    out += ["", "/* fields: _SHIFT, _WIDTH, _MASK (in place) */"]
    for r in registers:
        if r.single:
            continue
        for f in r.fields:
            n = f"PEA_{r.name}_{f.name.upper()}"
            out += [f"#define {n}_SHIFT {f.lsb}u", f"#define {n}_WIDTH {f.width}u",
                    f"#define {n}_MASK 0x{f.mask:08x}u"]
    out += ["", "/* error codes (ERROR.code) */"]
    for e in ErrorCode:
        out.append(f"#define PEA_ERR_{e.name} {int(e)}u  /* {e.doc} */")
    out += ["", "#endif /* PEA_REGS_H */"]
    return "\n".join(out) + "\n"


def python_module(registers=REGISTERS):
    """Python constants for the host driver (``firmware/regs.py``); no dependencies."""
    out = [f'"""Register map constants. {_HEADER_NOTE}"""', "",
           f"CSR_BASE = 0x{CSR_BASE:08x}",
           f"ID_VALUE = 0x{ID_VALUE:08x}",
           f"HW_VERSION = {HW_VERSION}",
           f"ISA_VERSION = {ISA_VERSION}",
           f"MAX_PROFILED_DESCRIPTORS = {MAX_PROFILED_DESCRIPTORS}", "",
           "# register byte offsets from CSR_BASE"]
    for r in registers:
        out.append(f"{r.name} = 0x{r.offset:02x}  # {r.access.value}")
    out += ["", "# fields: _SHIFT and _MASK (in place)"]
    for r in registers:
        if r.single:
            continue
        for f in r.fields:
            n = f"{r.name}_{f.name.upper()}"
            out += [f"{n}_SHIFT = {f.lsb}", f"{n}_MASK = 0x{f.mask:08x}"]
    out += ["", "# error codes (ERROR.code)"]
    for e in ErrorCode:
        out.append(f"ERR_{e.name} = {int(e)}")
    out += ["", "REGISTERS = {"]
    for r in registers:
        out.append(f"    {r.name!r}: 0x{r.offset:02x},")
    out += ["}", "", "# register -> {field: (shift, width)}", "FIELDS = {"]
    for r in registers:
        fields = ", ".join(f"{f.name!r}: ({f.lsb}, {f.width})" for f in r.fields)
        out.append(f"    {r.name!r}: {{{fields}}},")
    out += ["}", "", "ERROR_NAMES = {"]
    for e in ErrorCode:
        out.append(f"    {int(e)}: {e.name!r},")
    out += ["}", "", "ERROR_DOCS = {"]
    for e in ErrorCode:
        out.append(f"    {int(e)}: {e.doc!r},")
    out += ["}", "", "",
            "def field(register, name, value):",
            '    """Extract field ``name`` of ``register`` from a read ``value``."""',
            "    shift, width = FIELDS[register][name]",
            "    return (value >> shift) & ((1 << width) - 1)",
            "", "",
            "def error_name(code):",
            '    """Name of an error code, ``UNKNOWN(<n>)`` for codes not in the table."""',
            "    return ERROR_NAMES.get(code, f\"UNKNOWN({code})\")"]
    return "\n".join(out) + "\n"


def outputs(root=None):
    """``{path: text}`` of the three generated files under the repository ``root``."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    return {root / "docs" / "REGISTERS.md": markdown(),
            root / "firmware" / "regs.h": c_header(),
            root / "firmware" / "regs.py": python_module()}


def write_all(root=None):
    for path, text in outputs(root).items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    import sys
    try:
        write_all(sys.argv[1] if len(sys.argv) > 1 else None)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
