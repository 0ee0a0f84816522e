// Threads started by a client library (libnats) or by the name lookup
// inherit the signal mask of the thread that creates them. Inside a
// PostgreSQL backend a process-directed signal (SIGTERM, SIGHUP, SIGUSR1,
// SIGURG for latches) may be delivered to any thread that does not block
// it, and PostgreSQL's handlers must only run on the backend's own thread.
// So every call that may create a thread runs with all signals blocked;
// the mask is restored afterwards, and signals arriving meanwhile are
// delivered then.
#pragma once

#include <csignal>
#include <pthread.h>

namespace outbox::sink::detail {

class SignalsBlocked {
public:
    SignalsBlocked() noexcept {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved_);
    }
    ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
    SignalsBlocked(const SignalsBlocked&) = delete;
    SignalsBlocked& operator=(const SignalsBlocked&) = delete;

private:
    sigset_t saved_{};
};

}  // namespace outbox::sink::detail
