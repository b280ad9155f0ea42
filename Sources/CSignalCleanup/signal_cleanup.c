#include "signal_cleanup.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A fixed table, so the handler reads only memory that stays valid: a slot holds a path allocated by
// zoo_cleanup_add and is emptied by an atomic exchange before the path is freed.
enum { SLOTS = 64 };
static _Atomic(char *) slots[SLOTS];
static atomic_flag installed = ATOMIC_FLAG_INIT;
static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_signal(int sig) {
    // Files first, then (now empty) folders; both calls are async-signal-safe and fail harmlessly
    // on the other kind.
    for (int i = 0; i < SLOTS; i++) {
        char *path = atomic_load(&slots[i]);
        if (path) unlink(path);
    }
    for (int i = 0; i < SLOTS; i++) {
        char *path = atomic_load(&slots[i]);
        if (path) rmdir(path);
    }
    // Die of the same signal, as the default action would have.
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install(void) {
    if (atomic_flag_test_and_set(&installed)) return;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction previous;
        if (sigaction(signals[i], NULL, &previous) != 0) continue;
        // Leave ignored signals ignored (nohup) and custom handlers alone.
        if (previous.sa_handler != SIG_DFL) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, NULL);
    }
}

int zoo_cleanup_add(const char *path) {
    install();
    char *copy = strdup(path);
    if (!copy) return -1;
    for (int i = 0; i < SLOTS; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &expected, copy)) return i;
    }
    free(copy);
    return -1;
}

void zoo_cleanup_remove(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    free(atomic_exchange(&slots[slot], NULL));
}
