"""Register map constants. Generated from contract/registers.py by `python -m contract.registers`; do not edit by hand."""

CSR_BASE = 0x40000000
ID_VALUE = 0x50454131
HW_VERSION = 1
ISA_VERSION = 1
MAX_PROFILED_DESCRIPTORS = 64

# register byte offsets from CSR_BASE
ID = 0x00  # RO
VERSION = 0x04  # RO
CONFIG0 = 0x08  # RO
CONFIG1 = 0x0c  # RO
CTRL = 0x10  # W1
STATUS = 0x14  # RO
ERROR = 0x18  # RO
PROG_ADDR = 0x1c  # RW
WINDOW_BASE = 0x20  # RW
WINDOW_LIMIT = 0x24  # RW
CYCLES = 0x28  # RO
MAC_BUSY = 0x2c  # RO
LAYER_SEL = 0x30  # RW
LAYER_CYCLES = 0x34  # RO
PC = 0x38  # RO
SCRATCH = 0x3c  # RW

# fields: _SHIFT and _MASK (in place)
VERSION_HW_SHIFT = 0
VERSION_HW_MASK = 0x0000ffff
VERSION_ISA_SHIFT = 16
VERSION_ISA_MASK = 0xffff0000
CONFIG0_P_O_SHIFT = 0
CONFIG0_P_O_MASK = 0x000000ff
CONFIG0_P_I_SHIFT = 8
CONFIG0_P_I_MASK = 0x0000ff00
CONFIG0_A_PLANES_SHIFT = 16
CONFIG0_A_PLANES_MASK = 0x000f0000
CONFIG0_N_CODE_BANKS_SHIFT = 20
CONFIG0_N_CODE_BANKS_MASK = 0x00f00000
CONFIG0_ACC_BITS_SHIFT = 24
CONFIG0_ACC_BITS_MASK = 0xff000000
CONFIG1_RES_BITS_SHIFT = 0
CONFIG1_RES_BITS_MASK = 0x000000ff
CONFIG1_LOG2_MEM_WORDS_SHIFT = 8
CONFIG1_LOG2_MEM_WORDS_MASK = 0x0000ff00
CONFIG1_EMB_CHANNELS_SHIFT = 16
CONFIG1_EMB_CHANNELS_MASK = 0x000f0000
CTRL_START_SHIFT = 0
CTRL_START_MASK = 0x00000001
CTRL_ABORT_SHIFT = 1
CTRL_ABORT_MASK = 0x00000002
STATUS_BUSY_SHIFT = 0
STATUS_BUSY_MASK = 0x00000001
STATUS_DONE_SHIFT = 1
STATUS_DONE_MASK = 0x00000002
STATUS_ERROR_SHIFT = 2
STATUS_ERROR_MASK = 0x00000004
ERROR_CODE_SHIFT = 0
ERROR_CODE_MASK = 0x000000ff
ERROR_PC_SHIFT = 16
ERROR_PC_MASK = 0xffff0000

# error codes (ERROR.code)
ERR_OK = 0
ERR_BAD_OPCODE = 1
ERR_WINDOW = 2
ERR_BUS_ERROR = 3
ERR_LOCAL_RANGE = 4
ERR_BAD_DESCRIPTOR = 5
ERR_ABORTED = 6
ERR_TIMEOUT = 7

REGISTERS = {
    'ID': 0x00,
    'VERSION': 0x04,
    'CONFIG0': 0x08,
    'CONFIG1': 0x0c,
    'CTRL': 0x10,
    'STATUS': 0x14,
    'ERROR': 0x18,
    'PROG_ADDR': 0x1c,
    'WINDOW_BASE': 0x20,
    'WINDOW_LIMIT': 0x24,
    'CYCLES': 0x28,
    'MAC_BUSY': 0x2c,
    'LAYER_SEL': 0x30,
    'LAYER_CYCLES': 0x34,
    'PC': 0x38,
    'SCRATCH': 0x3c,
}

# register -> {field: (shift, width)}
FIELDS = {
    'ID': {'value': (0, 32)},
    'VERSION': {'hw': (0, 16), 'isa': (16, 16)},
    'CONFIG0': {'p_o': (0, 8), 'p_i': (8, 8), 'a_planes': (16, 4), 'n_code_banks': (20, 4), 'acc_bits': (24, 8)},
    'CONFIG1': {'res_bits': (0, 8), 'log2_mem_words': (8, 8), 'emb_channels': (16, 4)},
    'CTRL': {'start': (0, 1), 'abort': (1, 1)},
    'STATUS': {'busy': (0, 1), 'done': (1, 1), 'error': (2, 1)},
    'ERROR': {'code': (0, 8), 'pc': (16, 16)},
    'PROG_ADDR': {'value': (0, 32)},
    'WINDOW_BASE': {'value': (0, 32)},
    'WINDOW_LIMIT': {'value': (0, 32)},
    'CYCLES': {'value': (0, 32)},
    'MAC_BUSY': {'value': (0, 32)},
    'LAYER_SEL': {'value': (0, 32)},
    'LAYER_CYCLES': {'value': (0, 32)},
    'PC': {'value': (0, 32)},
    'SCRATCH': {'value': (0, 32)},
}

ERROR_NAMES = {
    0: 'OK',
    1: 'BAD_OPCODE',
    2: 'WINDOW',
    3: 'BUS_ERROR',
    4: 'LOCAL_RANGE',
    5: 'BAD_DESCRIPTOR',
    6: 'ABORTED',
    7: 'TIMEOUT',
}

ERROR_DOCS = {
    0: 'no error',
    1: 'unknown descriptor opcode or DMA command kind',
    2: 'main-memory access outside [WINDOW_BASE, WINDOW_LIMIT), refused before any access',
    3: 'a Wishbone transfer ended with err',
    4: 'local address outside its buffer, or an unknown buffer id',
    5: 'a descriptor field out of range for the engine or the configuration',
    6: 'the run was stopped by CTRL.abort',
    7: 'a unit did not finish within its time limit',
}


def field(register, name, value):
    """Extract field ``name`` of ``register`` from a read ``value``."""
    shift, width = FIELDS[register][name]
    return (value >> shift) & ((1 << width) - 1)


def error_name(code):
    """Name of an error code, ``UNKNOWN(<n>)`` for codes not in the table."""
    return ERROR_NAMES.get(code, f"UNKNOWN({code})")
