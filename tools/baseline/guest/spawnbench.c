/*
 * Process-start benchmark for the Linux baseline guest (issue 7).
 *
 *   spawnbench VARIANT ITERATIONS [PROGRAM [ARGS...]]
 *
 * VARIANT is one of
 *   fork         fork(); the child calls _exit(0); the parent waits
 *   fork_exec    fork(); the child execs PROGRAM; the parent waits
 *   vfork_exec   vfork(); the child execs PROGRAM; the parent waits
 *   posix_spawn  posix_spawn(PROGRAM); the parent waits
 *   cmd          posix_spawn(PROGRAM ARGS...) (for example a container run); the parent waits
 *   calib        a counted loop of 3 instructions x 1 000 000 (checks that -icount is in effect:
 *                it must read 3 000 000 instructions)
 *
 * Each iteration is timed with the generic timer (CNTVCT_EL0, read from EL0), and the figures are
 * converted to nanoseconds of virtual time: ticks x 1e9 / CNTFRQ_EL0. Under QEMU `-icount shift=0`
 * one nanosecond is one guest instruction, so these are instruction counts.
 * A few warm-up iterations are run and discarded first. The result is one JSON line on stdout.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static inline uint64_t read_ticks(void)
{
    uint64_t v;
    __asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
    return v;
}

static uint64_t read_freq(void)
{
    uint64_t f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    return f;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void wait_ok(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "spawnbench: child failed (status 0x%x)\n", st);
        exit(3);
    }
}

static char **child_argv;

static void one(const char *variant)
{
    pid_t pid;
    if (strcmp(variant, "fork") == 0) {
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            _exit(0);
        wait_ok(pid);
    } else if (strcmp(variant, "fork_exec") == 0) {
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            execve(child_argv[0], child_argv, environ);
            _exit(127);
        }
        wait_ok(pid);
    } else if (strcmp(variant, "vfork_exec") == 0) {
        pid = vfork();
        if (pid < 0)
            die("vfork");
        if (pid == 0) {
            execve(child_argv[0], child_argv, environ);
            _exit(127);
        }
        wait_ok(pid);
    } else if (strcmp(variant, "posix_spawn") == 0 || strcmp(variant, "cmd") == 0) {
        int rc = posix_spawnp(&pid, child_argv[0], NULL, NULL, child_argv, environ);
        if (rc != 0) {
            fprintf(stderr, "spawnbench: posix_spawn %s: %s\n", child_argv[0], strerror(rc));
            exit(2);
        }
        wait_ok(pid);
    } else if (strcmp(variant, "calib") == 0) {
        uint64_t n = 1000000, acc = 0;
        __asm__ volatile("1:\n\t"
                         "add %1, %1, #1\n\t"
                         "subs %0, %0, #1\n\t"
                         "b.ne 1b"
                         : "+r"(n), "+r"(acc)
                         :
                         : "cc");
    } else {
        fprintf(stderr, "spawnbench: unknown variant %s\n", variant);
        exit(2);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile: the index of the smallest sample with at least pct % at or below it. */
static long rank(long n, long pct)
{
    long r = (pct * n + 99) / 100 - 1;
    return r < 0 ? 0 : r;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s fork|fork_exec|vfork_exec|posix_spawn|cmd|calib ITERATIONS "
                        "[PROGRAM [ARGS...]]\n", argv[0]);
        return 2;
    }
    const char *variant = argv[1];
    long n = strtol(argv[2], NULL, 10);
    if (n < 1)
        n = 1;
    static char *default_argv[] = {"/bench/exit0", NULL};
    child_argv = argc > 3 ? &argv[3] : default_argv;

    uint64_t *t = malloc(sizeof(uint64_t) * (size_t)n);
    if (!t)
        die("malloc");
    long warm = n / 100 < 5 ? 5 : (n / 100 > 50 ? 50 : n / 100);
    for (long i = 0; i < warm; i++)
        one(variant);
    for (long i = 0; i < n; i++) {
        uint64_t a = read_ticks();
        one(variant);
        t[i] = read_ticks() - a;
    }
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += t[i];
    qsort(t, (size_t)n, sizeof(uint64_t), cmp_u64);
    uint64_t freq = read_freq();
    uint64_t med = t[(n - 1) / 2];
    uint64_t p99 = t[rank(n, 99)];
#define NS(x) ((uint64_t)((unsigned __int128)(x) * 1000000000u / freq))
    printf("{\"bench\":\"process-start\",\"variant\":\"%s\",\"program\":\"%s\",\"n\":%ld,"
           "\"warmup\":%ld,\"freq_hz\":%llu,"
           "\"median_ticks\":%llu,\"p99_ticks\":%llu,\"min_ticks\":%llu,\"max_ticks\":%llu,"
           "\"median_instr\":%llu,\"p99_instr\":%llu,\"min_instr\":%llu,\"max_instr\":%llu,"
           "\"mean_instr\":%llu,\"p10_instr\":%llu,\"p25_instr\":%llu,\"p75_instr\":%llu,"
           "\"p90_instr\":%llu}\n",
           variant, strcmp(variant, "fork") == 0 || strcmp(variant, "calib") == 0 ? "" : child_argv[0],
           n, warm, (unsigned long long)freq,
           (unsigned long long)med, (unsigned long long)p99, (unsigned long long)t[0],
           (unsigned long long)t[n - 1],
           (unsigned long long)NS(med), (unsigned long long)NS(p99), (unsigned long long)NS(t[0]),
           (unsigned long long)NS(t[n - 1]), (unsigned long long)NS(sum / (uint64_t)n),
           (unsigned long long)NS(t[rank(n, 10)]), (unsigned long long)NS(t[rank(n, 25)]),
           (unsigned long long)NS(t[rank(n, 75)]), (unsigned long long)NS(t[rank(n, 90)]));
    fflush(stdout);
    return 0;
}
