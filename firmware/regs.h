/* Generated from contract/registers.py by `python -m contract.registers`; do not edit by hand. */
#ifndef PEA_REGS_H
#define PEA_REGS_H

#define PEA_CSR_BASE 0x40000000u
#define PEA_ID_VALUE 0x50454131u
#define PEA_HW_VERSION 1u
#define PEA_ISA_VERSION 1u
#define PEA_MAX_PROFILED_DESCRIPTORS 64u

/* register byte offsets from PEA_CSR_BASE */
#define PEA_ID 0x00u  /* RO: identification, always 0x50454131 ('PEA1') */
#define PEA_VERSION 0x04u  /* RO: ISA and hardware versions */
#define PEA_CONFIG0 0x08u  /* RO: configuration of this instance (contract/config.py), part 0 */
#define PEA_CONFIG1 0x0cu  /* RO: configuration of this instance, part 1 */
#define PEA_CTRL 0x10u  /* W1: control strobes */
#define PEA_STATUS 0x14u  /* RO: run status */
#define PEA_ERROR 0x18u  /* RO: error of the last run */
#define PEA_PROG_ADDR 0x1cu  /* RW: word address of the first descriptor (read at start: a write during a run applies to the next run) */
#define PEA_WINDOW_BASE 0x20u  /* RW: first main-memory word the accelerator may access (read at start: a write during a run applies to the next run) */
#define PEA_WINDOW_LIMIT 0x24u  /* RW: main-memory words at or above this address are refused (exclusive limit; read at start: a write during a run applies to the next run) */
#define PEA_CYCLES 0x28u  /* RO: clock cycles of the last (or current) run */
#define PEA_MAC_BUSY 0x2cu  /* RO: cycles of the last run in which the MAC array accepted work */
#define PEA_LAYER_SEL 0x30u  /* RW: descriptor index whose cycle count LAYER_CYCLES shows (the first 64 descriptors of a run are counted) */
#define PEA_LAYER_CYCLES 0x34u  /* RO: cycles spent on descriptor LAYER_SEL in the last run */
#define PEA_PC 0x38u  /* RO: index of the descriptor being executed */
#define PEA_SCRATCH 0x3cu  /* RW: software's: the driver writes a mark at load and reads it after each run (a board reset clears it to 0) */

/* fields: _SHIFT, _WIDTH, _MASK (in place) */
#define PEA_VERSION_HW_SHIFT 0u
#define PEA_VERSION_HW_WIDTH 16u
#define PEA_VERSION_HW_MASK 0x0000ffffu
#define PEA_VERSION_ISA_SHIFT 16u
#define PEA_VERSION_ISA_WIDTH 16u
#define PEA_VERSION_ISA_MASK 0xffff0000u
#define PEA_CONFIG0_P_O_SHIFT 0u
#define PEA_CONFIG0_P_O_WIDTH 8u
#define PEA_CONFIG0_P_O_MASK 0x000000ffu
#define PEA_CONFIG0_P_I_SHIFT 8u
#define PEA_CONFIG0_P_I_WIDTH 8u
#define PEA_CONFIG0_P_I_MASK 0x0000ff00u
#define PEA_CONFIG0_A_PLANES_SHIFT 16u
#define PEA_CONFIG0_A_PLANES_WIDTH 4u
#define PEA_CONFIG0_A_PLANES_MASK 0x000f0000u
#define PEA_CONFIG0_N_CODE_BANKS_SHIFT 20u
#define PEA_CONFIG0_N_CODE_BANKS_WIDTH 4u
#define PEA_CONFIG0_N_CODE_BANKS_MASK 0x00f00000u
#define PEA_CONFIG0_ACC_BITS_SHIFT 24u
#define PEA_CONFIG0_ACC_BITS_WIDTH 8u
#define PEA_CONFIG0_ACC_BITS_MASK 0xff000000u
#define PEA_CONFIG1_RES_BITS_SHIFT 0u
#define PEA_CONFIG1_RES_BITS_WIDTH 8u
#define PEA_CONFIG1_RES_BITS_MASK 0x000000ffu
#define PEA_CONFIG1_LOG2_MEM_WORDS_SHIFT 8u
#define PEA_CONFIG1_LOG2_MEM_WORDS_WIDTH 8u
#define PEA_CONFIG1_LOG2_MEM_WORDS_MASK 0x0000ff00u
#define PEA_CONFIG1_EMB_CHANNELS_SHIFT 16u
#define PEA_CONFIG1_EMB_CHANNELS_WIDTH 4u
#define PEA_CONFIG1_EMB_CHANNELS_MASK 0x000f0000u
#define PEA_CTRL_START_SHIFT 0u
#define PEA_CTRL_START_WIDTH 1u
#define PEA_CTRL_START_MASK 0x00000001u
#define PEA_CTRL_ABORT_SHIFT 1u
#define PEA_CTRL_ABORT_WIDTH 1u
#define PEA_CTRL_ABORT_MASK 0x00000002u
#define PEA_STATUS_BUSY_SHIFT 0u
#define PEA_STATUS_BUSY_WIDTH 1u
#define PEA_STATUS_BUSY_MASK 0x00000001u
#define PEA_STATUS_DONE_SHIFT 1u
#define PEA_STATUS_DONE_WIDTH 1u
#define PEA_STATUS_DONE_MASK 0x00000002u
#define PEA_STATUS_ERROR_SHIFT 2u
#define PEA_STATUS_ERROR_WIDTH 1u
#define PEA_STATUS_ERROR_MASK 0x00000004u
#define PEA_ERROR_CODE_SHIFT 0u
#define PEA_ERROR_CODE_WIDTH 8u
#define PEA_ERROR_CODE_MASK 0x000000ffu
#define PEA_ERROR_PC_SHIFT 16u
#define PEA_ERROR_PC_WIDTH 16u
#define PEA_ERROR_PC_MASK 0xffff0000u

/* error codes (ERROR.code) */
#define PEA_ERR_OK 0u  /* no error */
#define PEA_ERR_BAD_OPCODE 1u  /* unknown descriptor opcode or DMA command kind */
#define PEA_ERR_WINDOW 2u  /* main-memory access outside [WINDOW_BASE, WINDOW_LIMIT), refused before any access */
#define PEA_ERR_BUS_ERROR 3u  /* a Wishbone transfer ended with err */
#define PEA_ERR_LOCAL_RANGE 4u  /* local address outside its buffer, or an unknown buffer id */
#define PEA_ERR_BAD_DESCRIPTOR 5u  /* a descriptor field out of range for the engine or the configuration */
#define PEA_ERR_ABORTED 6u  /* the run was stopped by CTRL.abort */
#define PEA_ERR_TIMEOUT 7u  /* a unit did not finish within its time limit */

#endif /* PEA_REGS_H */
