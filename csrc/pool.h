/* The helper threads parallel kernels run on (the vector scan today).
 *
 * Helpers are started on first use and kept for the life of the process, so a parallel call costs a
 * wake-up rather than a thread start. A job wakes only the helpers it needs (helper t runs task t),
 * and after a task a helper spins for a bounded time (PJ_POOL_SPIN_NS of wall clock, not a count of
 * pause instructions) before sleeping, so that back-to-back calls do not pay a futex wake-up each.
 *
 * Fork: pthread_atfork handlers (as OpenBLAS has) make fork() wait until no job is running and the
 * pool's lock is free; the child starts with no helpers and starts its own on first use. So a
 * process that forks while another thread scans gets a working child.
 *
 * The number of tasks a kernel splits into is its own choice (cpu.h's pj_cpu_count is the budget). */
#ifndef PJ_POOL_H
#define PJ_POOL_H

#include <stddef.h>

/* How long a helper (and the caller, for the helpers' results) spins before sleeping. */
#define PJ_POOL_SPIN_NS 50000L
/* Tasks beyond this run on the calling thread. */
#define PJ_POOL_MAX_THREADS 64

/* Run task(ctx, t) once for every t in [0, n) and return when all have returned: t = 0 on the
 * calling thread, t = 1 .. n-1 on helpers 1 .. n-1 (tasks no helper could be started for run on the
 * calling thread too). One call uses the helpers at a time: a call that finds them busy, or n <= 1,
 * runs every task on its own thread. Tasks must not call pj_pool_run. */
void pj_pool_run(void (*task)(void *ctx, size_t t), void *ctx, size_t n);

/* For tests: helper threads running in this process, and how many tasks helper `id` has run. */
size_t pj_pool_helpers(void);
unsigned long long pj_pool_tasks_run(size_t id);

#endif
