// Exception vectors and the user context switch.
//
// While a PD runs, SP_EL1 points just past that PD's `UserContext` (edgeos_kernel_core::context),
// so an exception from EL0 pushes the PD's general registers straight into its context; then
// the handler switches to the kernel stack (its top is kept in TPIDR_EL1) and calls into Rust,
// which returns the context to resume. The kernel runs with interrupts masked and is entered
// only from EL0, so every entry starts on an empty kernel stack.
//
// FP/SIMD registers are not saved here: the kernel never uses them (it is built soft-float) and
// switches them lazily (fp_save / fp_restore below, called when a PD traps on its first FP use).
//
// UserContext layout (bytes): x0..x30 at 0, sp_el0 at 248, elr at 256, spsr at 264; size 272.
// FpContext layout: q0..q31 at 0, fpcr at 512, fpsr at 520.

.equ CTX_SIZE, 272
.equ CTX_ELR, 256
.equ FP_FPCR, 512
.equ FP_FPSR, 520

.macro kernel_entry
    .balign 0x80
    b       kernel_fault_entry
.endm

// Saves the PD's registers into its context, then calls `handler(ctx)` on the kernel stack and
// resumes the context it returns. 26 instructions: fits a 32-instruction vector slot.
.macro user_entry handler
    .balign 0x80
    sub     sp, sp, #CTX_SIZE
    stp     x0, x1, [sp, #0]
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
    mrs     x0, sp_el0
    stp     x30, x0, [sp, #240]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x0, x1, [sp, #CTX_ELR]
    mov     x0, sp
    mrs     x1, tpidr_el1
    mov     sp, x1
    bl      \handler
    b       resume_user
.endm

.section .text.vectors, "ax"
.balign 0x800
.global exception_vectors
exception_vectors:
    // Current EL with SP_EL0: never used.
    kernel_entry
    kernel_entry
    kernel_entry
    kernel_entry
    // Current EL with SP_ELx: a kernel bug (the kernel runs with interrupts masked).
    kernel_entry
    kernel_entry
    kernel_entry
    kernel_entry
    // Lower EL, AArch64: PDs.
    user_entry handle_user_sync
    user_entry handle_user_irq
    user_entry handle_user_other
    user_entry handle_user_other
    // Lower EL, AArch32: not supported, PDs are AArch64 (SPSR forces it); treat as faults.
    user_entry handle_user_other
    user_entry handle_user_other
    user_entry handle_user_other
    user_entry handle_user_other

// Resumes the PD whose context x0 points to. Never returns.
.global resume_user
resume_user:
    mov     sp, x0
    ldp     x0, x1, [sp, #CTX_ELR]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x30, x0, [sp, #240]
    msr     sp_el0, x0
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

// The only FP/SIMD instructions in the kernel: saving and loading a PD's registers when the FP
// owner changes. The kernel is built for a soft-float target, so the assembler is told here
// that the core has FP/SIMD (every ARMv8-A profile core does).
.arch_extension fp
.arch_extension simd

// fp_save(x0 = *mut FpContext)
.global fp_save
fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpcr
    mrs     x2, fpsr
    str     x1, [x0, #FP_FPCR]
    str     x2, [x0, #FP_FPSR]
    ret

// fp_restore(x0 = *const FpContext)
.global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x1, [x0, #FP_FPCR]
    ldr     x2, [x0, #FP_FPSR]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
