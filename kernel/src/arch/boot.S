// EdgeOS boot entry for aarch64 (QEMU `virt`).
//
// Runs at the physical load address with the MMU off. Drops from EL2 to EL1 when entered at EL2,
// builds a boot translation table that maps the first 2 GiB of physical memory both at their
// physical addresses (TTBR0, needed only for the instant the MMU comes on) and in the high half
// (TTBR1, the kernel's direct map), turns the MMU on and jumps to `kmain` in the high half.
//
// Registers kept across the boot path: x19 = device tree address from the loader, x20 = 1 if
// entered at EL2 (PSCI then uses SMC instead of HVC).

.equ KERNEL_VIRT_OFFSET, 0xFFFFFF8000000000

// SCTLR_EL1 with the MMU and caches off, RES1 bits set (ARMv8.0 RES1: 29, 28, 23, 22, 20, 11).
.equ SCTLR_EL1_RES1, 0x30D00800
// MMU on: M | C | SA | SA0 | I | DZE | UCT | nTWE | UCI, plus RES1. nTWI is clear: WFI at EL0 traps.
.equ SCTLR_EL1_ON, (SCTLR_EL1_RES1 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12) | (1 << 14) | (1 << 15) | (1 << 18) | (1 << 26))
// MAIR: attr0 Device-nGnRE, attr1 Normal write-back, attr2 Normal non-cacheable, attr3 Device-nGnRnE.
.equ MAIR_VALUE, 0x0000000044FF04
// TCR: T0SZ = T1SZ = 25 (39-bit halves, three levels), 4 KiB granules, inner-shareable write-back
// walks. IPS and AS are filled in from the ID registers.
.equ TCR_VALUE, 0xB5193519
// Level-1 block descriptors: device (attr0, AF, PXN, UXN) and normal RAM (attr1, inner shareable, AF, UXN).
.equ BLOCK_DEVICE, 0x0060000000000401
.equ BLOCK_NORMAL, 0x0040000000000705

.section .text.boot, "ax"
.global _start
_start:
    mov     x19, x0
    mov     x20, #0
    msr     daifset, #0xf
    mrs     x9, CurrentEL
    ubfx    x9, x9, #2, #2
    cmp     x9, #2
    b.ne    .Lat_el1

    // Entered at EL2: let EL1 run AArch64 with direct access to the timers, FP and the GICv3 CPU
    // interface, then return to EL1.
    mov     x20, #1
    mov     x9, #(1 << 31)              // HCR_EL2.RW: EL1 is AArch64
    msr     hcr_el2, x9
    // CNTHCTL_EL2 (E2H = 0): EL1PCTEN | EL1PCEN, so EL1 (and EL0, as CNTKCTL_EL1 allows) reach
    // the physical counter and timer without trapping; every other bit clear (no event stream,
    // no FEAT_ECV traps on the virtual counter and timer, which the kernel uses).
    mov     x9, #3
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    mrs     x9, midr_el1
    msr     vpidr_el2, x9
    mrs     x9, mpidr_el1
    msr     vmpidr_el2, x9
    mov     x9, #0x33ff                 // CPTR_EL2: RES1 bits, no FP/SIMD traps
    msr     cptr_el2, x9
    msr     hstr_el2, xzr
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4             // GIC system register interface implemented?
    cbz     x9, 1f
    mrs     x9, S3_4_C12_C9_5           // ICC_SRE_EL2
    orr     x9, x9, #0xf                // SRE | DFB | DIB | Enable (lets EL1 use ICC_* registers)
    msr     S3_4_C12_C9_5, x9
    isb
1:
    ldr     x9, =SCTLR_EL1_RES1
    msr     sctlr_el1, x9
    mov     x9, #0x3c5                  // EL1h, DAIF masked
    msr     spsr_el2, x9
    adr     x9, .Lat_el1
    msr     elr_el2, x9
    eret

.Lat_el1:
    ldr     x9, =SCTLR_EL1_RES1
    msr     sctlr_el1, x9
    isb
    mov     x9, #(1 << 20)              // CPACR_EL1.FPEN = 0b01: FP/SIMD traps at EL0 only
    msr     cpacr_el1, x9                // (switched lazily; the kernel never uses FP/SIMD)
    isb

    // Zero .bss (physical addresses; the MMU is off).
    adrp    x9, __bss_start_phys
    add     x9, x9, :lo12:__bss_start_phys
    adrp    x10, __bss_end_phys
    add     x10, x10, :lo12:__bss_end_phys
2:  cmp     x9, x10
    b.hs    3f
    stp     xzr, xzr, [x9], #16
    b       2b
3:
    // Boot table: one level-1 table used by both TTBR0 and TTBR1.
    ldr     x9, =boot_l1
    ldr     x10, =KERNEL_VIRT_OFFSET
    sub     x9, x9, x10                 // physical address of boot_l1
    ldr     x10, =BLOCK_DEVICE          // [0 GiB, 1 GiB): devices
    str     x10, [x9, #0]
    ldr     x10, =BLOCK_NORMAL          // [1 GiB, 2 GiB): RAM
    mov     x11, #0x40000000
    orr     x10, x10, x11
    str     x10, [x9, #8]
    dsb     sy

    ldr     x10, =MAIR_VALUE
    msr     mair_el1, x10
    ldr     x10, =TCR_VALUE
    mrs     x11, id_aa64mmfr0_el1
    and     x12, x11, #0x7              // PARange -> TCR.IPS
    cmp     x12, #5
    mov     x13, #5
    csel    x12, x12, x13, ls           // the kernel never needs more than 48 bits
    orr     x10, x10, x12, lsl #32
    ubfx    x12, x11, #4, #4            // ASIDBits: 2 means 16-bit ASIDs
    cmp     x12, #2
    b.ne    4f
    orr     x10, x10, #(1 << 36)        // TCR.AS
4:  msr     tcr_el1, x10
    msr     ttbr0_el1, x9
    msr     ttbr1_el1, x9
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x10, =SCTLR_EL1_ON
    msr     sctlr_el1, x10
    isb

    // Now in the high half.
    ldr     x10, =boot_stack_top
    mov     sp, x10
    mov     x0, x19
    mov     x1, x20
    ldr     x10, =kmain
    br      x10
.ltorg

.section .bss.boot_l1, "aw", @nobits
.balign 4096
.global boot_l1
boot_l1:
    .space 4096

// The kernel stack: outside .bss (kernel.ld), because it needs no zeroing.
.section .boot_stack, "aw", @nobits
.balign 16
.global boot_stack_bottom
boot_stack_bottom:
    .space 0x10000
.global boot_stack_top
boot_stack_top:
