// The process the start benchmark launches: it only calls exit(0).
// Linked with -nostdlib -static so the whole file is about 1 KB and exec
// measures the kernel's work, not a C library's start-up.
    .text
    .globl _start
_start:
    mov     x0, #0          // status
    mov     x8, #93         // __NR_exit (aarch64 generic syscall table)
    svc     #0
