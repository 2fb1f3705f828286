// Exception vectors and the user context switch.
//
// While a PD runs, SP_EL1 points just past that PD's `UserContext` (see context.rs), so an
// exception from EL0 pushes the PD's registers straight into its context; then the handler
// switches to the kernel stack (its top is kept in TPIDR_EL1) and calls into Rust. The kernel is
// entered only from EL0 (it runs with interrupts masked), so every entry starts on an empty
// kernel stack and the Rust handler returns the context to resume.
//
// UserContext layout (bytes): x0..x30 at 0, sp_el0 at 248, elr at 256, spsr at 264,
// q0..q31 at 272, fpcr at 784, fpsr at 792; size 800.

.equ CTX_SIZE, 800
.equ CTX_ELR, 256
.equ CTX_Q, 272
.equ CTX_FPCR, 784
.equ CTX_FPSR, 792

// Exception kinds passed to `handle_user_exception`.
.equ KIND_SYNC, 0
.equ KIND_IRQ, 1
.equ KIND_FIQ, 2
.equ KIND_SERROR, 3

.macro kernel_entry kind
    .balign 0x80
    b       kernel_fault_entry
.endm

.macro user_entry kind
    .balign 0x80
    sub     sp, sp, #CTX_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       user_save
.endm

.section .text.vectors, "ax"
.balign 0x800
.global exception_vectors
exception_vectors:
    // Current EL with SP_EL0: never used.
    kernel_entry 0
    kernel_entry 1
    kernel_entry 2
    kernel_entry 3
    // Current EL with SP_ELx: a kernel bug (the kernel runs with interrupts masked).
    kernel_entry 0
    kernel_entry 1
    kernel_entry 2
    kernel_entry 3
    // Lower EL, AArch64: PDs.
    user_entry KIND_SYNC
    user_entry KIND_IRQ
    user_entry KIND_FIQ
    user_entry KIND_SERROR
    // Lower EL, AArch32: not supported, PDs are AArch64 (SPSR forces it); treat as faults.
    user_entry KIND_SYNC
    user_entry KIND_IRQ
    user_entry KIND_FIQ
    user_entry KIND_SERROR

user_save:
    // x0, x1 are saved; x1 holds the kind.
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #CTX_ELR]
    add     x2, sp, #CTX_Q
    stp     q0, q1, [x2, #0]
    stp     q2, q3, [x2, #32]
    stp     q4, q5, [x2, #64]
    stp     q6, q7, [x2, #96]
    stp     q8, q9, [x2, #128]
    stp     q10, q11, [x2, #160]
    stp     q12, q13, [x2, #192]
    stp     q14, q15, [x2, #224]
    stp     q16, q17, [x2, #256]
    stp     q18, q19, [x2, #288]
    stp     q20, q21, [x2, #320]
    stp     q22, q23, [x2, #352]
    stp     q24, q25, [x2, #384]
    stp     q26, q27, [x2, #416]
    stp     q28, q29, [x2, #448]
    stp     q30, q31, [x2, #480]
    mrs     x2, fpcr
    mrs     x3, fpsr
    str     x2, [sp, #CTX_FPCR]
    str     x3, [sp, #CTX_FPSR]
    mov     x0, sp
    mrs     x2, tpidr_el1
    mov     sp, x2
    mov     x29, #0
    bl      handle_user_exception
    // fall through with x0 = context to resume

// Resumes the PD whose context x0 points to. Never returns.
.global resume_user
resume_user:
    mov     sp, x0
    ldr     x2, [sp, #CTX_FPCR]
    ldr     x3, [sp, #CTX_FPSR]
    msr     fpcr, x2
    msr     fpsr, x3
    add     x2, sp, #CTX_Q
    ldp     q0, q1, [x2, #0]
    ldp     q2, q3, [x2, #32]
    ldp     q4, q5, [x2, #64]
    ldp     q6, q7, [x2, #96]
    ldp     q8, q9, [x2, #128]
    ldp     q10, q11, [x2, #160]
    ldp     q12, q13, [x2, #192]
    ldp     q14, q15, [x2, #224]
    ldp     q16, q17, [x2, #256]
    ldp     q18, q19, [x2, #288]
    ldp     q20, q21, [x2, #320]
    ldp     q22, q23, [x2, #352]
    ldp     q24, q25, [x2, #384]
    ldp     q26, q27, [x2, #416]
    ldp     q28, q29, [x2, #448]
    ldp     q30, q31, [x2, #480]
    ldp     x2, x3, [sp, #CTX_ELR]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #CTX_SIZE
    eret

// An exception taken from EL1: a kernel bug. Report it from a fresh frame on the kernel stack.
kernel_fault_entry:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    mrs     x2, far_el1
    mov     x3, sp
    mrs     x4, tpidr_el1
    mov     sp, x4
    bl      handle_kernel_exception
1:  wfi
    b       1b
