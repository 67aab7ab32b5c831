/* The helper thread pool (see pool.h).
 *
 * Each helper has a slot: a job generation it waits on and a condition variable of its own, so a
 * job signals exactly the helpers it needs. Publishing a job: the caller stores ctx/task/pending,
 * then bumps each needed slot's generation (atomics, sequentially consistent: the helper that sees
 * the new generation sees the job). Finishing: each helper decrements `pending`; the caller spins,
 * then sleeps on `done` until it reaches 0, which orders every helper's writes before the caller's
 * reads. Sleeping and waking happen under `lock`, so no wake-up is lost. */
#define _POSIX_C_SOURCE 200809L
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PJ_POOL_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define PJ_POOL_PAUSE() __asm__ volatile("yield")
#else
#define PJ_POOL_PAUSE() ((void)0)
#endif

typedef struct {
    _Alignas(64) atomic_ulong gen; /* bumped once per job this helper is to run */
    pthread_cond_t wake;
    int sleeping;                  /* under pool.lock */
    atomic_ullong tasks_run;
    unsigned long gen0; /* gen when the helper was started (written before pthread_create) */
} slot;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t helpers; /* under lock; helpers 1 .. helpers are running */
    /* The job: written by the caller before the slots' generations are bumped. */
    void (*_Atomic task)(void *, size_t);
    void *_Atomic ctx;
    atomic_size_t pending; /* helpers that have not finished the current job */
    slot slots[PJ_POOL_MAX_THREADS];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Held by the one call using the helpers, and by fork() (prepare .. parent/child). */
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A bounded spin: a wait loop calls spin_more() each turn, which pauses and says whether to keep
 * spinning; after PJ_POOL_SPIN_NS of wall clock (read every 32 turns: the clock costs ~20 ns) it
 * says stop, and the waiter sleeps instead. */
typedef struct {
    unsigned turns;
    long long deadline;
} spinner;

static int spin_more(spinner *sp) {
    PJ_POOL_PAUSE();
    if ((++sp->turns & 31) != 0) return 1;
    long long t = now_ns();
    if (!sp->deadline) sp->deadline = t + PJ_POOL_SPIN_NS;
    return t < sp->deadline;
}

static void *helper_main(void *arg) {
    size_t id = (size_t)(uintptr_t)arg;
    slot *s = &pool.slots[id];
    unsigned long seen = s->gen0; /* the generation before this helper's first job */
    for (;;) {
        spinner sp = {0, 0};
        while (atomic_load(&s->gen) == seen && spin_more(&sp)) continue;
        if (atomic_load(&s->gen) == seen) {
            pthread_mutex_lock(&pool.lock);
            s->sleeping = 1;
            while (atomic_load(&s->gen) == seen) pthread_cond_wait(&s->wake, &pool.lock);
            s->sleeping = 0;
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&s->gen);
        atomic_load(&pool.task)(atomic_load(&pool.ctx), id);
        atomic_fetch_add(&s->tasks_run, 1);
        if (atomic_fetch_sub(&pool.pending, 1) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* ---- fork ---------------------------------------------------------------------------------- */

/* Before fork(): wait for the running job (if any) to end and hold both locks, so that the child
 * inherits them in a known state. */
static void before_fork(void) {
    pthread_mutex_lock(&pool_busy);
    pthread_mutex_lock(&pool.lock);
}

static void after_fork_parent(void) {
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_busy);
}

/* The child has only the forking thread: no helper exists. Their slots and condition variables
 * (which may record waiters that are not in this process) start afresh. */
static void after_fork_child(void) {
    pool.helpers = 0;
    atomic_store(&pool.pending, 0);
    for (size_t i = 0; i < PJ_POOL_MAX_THREADS; i++) {
        slot *s = &pool.slots[i];
        pthread_cond_init(&s->wake, NULL);
        s->sleeping = 0;
        atomic_store(&s->tasks_run, 0);
    }
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_busy);
}

static void pool_init(void) {
    for (size_t i = 0; i < PJ_POOL_MAX_THREADS; i++) pthread_cond_init(&pool.slots[i].wake, NULL);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Start helpers until there are `want` (under pool.lock). Helpers block every signal: they never
 * run Python code, so signals go to the threads that do. */
static void start_helpers(size_t want) {
    if (want > PJ_POOL_MAX_THREADS - 1) want = PJ_POOL_MAX_THREADS - 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (pool.helpers < want) {
        pthread_attr_t attr;
        if (pthread_attr_init(&attr) != 0) break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.slots[pool.helpers + 1].gen0 = atomic_load(&pool.slots[pool.helpers + 1].gen);
        pthread_t tid;
        int rc = pthread_create(&tid, &attr, helper_main, (void *)(uintptr_t)(pool.helpers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.helpers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void pj_pool_run(void (*task)(void *ctx, size_t t), void *ctx, size_t n) {
    if (n <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        for (size_t t = 0; t < n; t++) task(ctx, t);
        return;
    }
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    start_helpers(n - 1);
    size_t used = pool.helpers < n - 1 ? pool.helpers : n - 1;
    atomic_store(&pool.task, task);
    atomic_store(&pool.ctx, ctx);
    atomic_store(&pool.pending, used);
    for (size_t id = 1; id <= used; id++) {
        slot *s = &pool.slots[id];
        atomic_fetch_add(&s->gen, 1);
        if (s->sleeping) pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&pool.lock);

    task(ctx, 0);
    for (size_t t = used + 1; t < n; t++) task(ctx, t); /* no helper for these */
    spinner sp = {0, 0};
    while (atomic_load(&pool.pending) > 0 && spin_more(&sp)) continue;
    if (atomic_load(&pool.pending) > 0) {
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool_busy);
}

size_t pj_pool_helpers(void) {
    pthread_mutex_lock(&pool.lock);
    size_t n = pool.helpers;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

unsigned long long pj_pool_tasks_run(size_t id) {
    return id < PJ_POOL_MAX_THREADS ? atomic_load(&pool.slots[id].tasks_run) : 0;
}
