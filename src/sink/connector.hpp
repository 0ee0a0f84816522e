// A connect that may block, run off the worker's loop.
//
// Name lookup, TCP, TLS, a protocol's handshake and login each wait for the
// peer, and a slow or hostile peer can make them last connect_timeout. The
// worker's loop serves every endpoint, so it must never wait there: a
// Connector runs the connect on a thread of its own and hands the result
// back; an eventfd in the sink's epoll set wakes the loop when it is there.
//
// The thread starts with every signal blocked (SignalsBlocked: PostgreSQL's
// handlers must only run on the backend's thread, and the client library's
// own threads, started from this one, inherit the mask), calls nothing of
// PostgreSQL (src/sink has no PostgreSQL at all), and shares nothing with
// the loop but the State below, under its mutex. The connect function gets
// copies of what it needs, never the sink.
//
// An attempt the sink gives up on (the endpoint changed, the worker exits,
// the sink is destroyed) is abandoned: the thread runs on, at most until its
// connect_timeout, and then destroys what it made, on its own thread. Result
// types own their connection (RAII), so destroying one closes it.
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "common.hpp"
#include "signals.hpp"

namespace outbox::sink::detail {

// Result: movable, default-constructible, with a `std::string error` that
// is set when the connect failed.
template <typename Result>
class Connector {
public:
    explicit Connector(Poller& poller) : poller_(poller) {}
    ~Connector() { abandon(); }
    Connector(const Connector&) = delete;
    Connector& operator=(const Connector&) = delete;

    // Runs `connect()` on a new thread. Call only when !running().
    template <typename Connect>
    void start(Connect connect) {
        auto state = std::make_shared<State>();
        poller_.watch(state->done.fd(), true, false);
        state_ = state;
        try {
            SignalsBlocked blocked;
            std::thread([state, connect = std::move(connect)]() mutable noexcept { run(*state, connect); }).detach();
        } catch (const std::exception& e) {  // no thread (resource limits): a failed connect
            Result failed;
            failed.error = std::string("could not start a connect thread: ") + e.what();
            std::lock_guard lock(state->mu);
            state->result = std::move(failed);
            state->done.signal();
        }
    }

    bool running() const noexcept { return state_ != nullptr; }

    // The result once the thread has finished; nullopt before, or when no
    // attempt runs. Taking it ends the attempt.
    std::optional<Result> take() {
        if (!state_) return std::nullopt;
        std::optional<Result> out;
        {
            std::lock_guard lock(state_->mu);
            if (!state_->result) return std::nullopt;
            out = std::move(state_->result);
            state_->result.reset();
        }
        poller_.forget(state_->done.fd());
        state_.reset();
        return out;
    }

    // Gives the attempt up: its thread destroys what it makes.
    void abandon() noexcept {
        if (!state_) return;
        poller_.forget(state_->done.fd());
        std::optional<Result> made;  // destroyed here when the thread had finished
        {
            std::lock_guard lock(state_->mu);
            state_->abandoned = true;
            made = std::move(state_->result);
        }
        state_.reset();
    }

private:
    struct State {
        std::mutex mu;
        std::optional<Result> result;  // guarded by mu
        bool abandoned = false;        // guarded by mu
        Wakeup done;                   // signalled when result is set
    };

    template <typename Connect>
    static Result attempt(Connect& connect) noexcept {
        try {
            return connect();
        } catch (const std::exception& e) {
            Result failed;
            failed.error = std::string("could not connect: ") + e.what();
            return failed;
        } catch (...) {
            Result failed;
            failed.error = "could not connect";
            return failed;
        }
    }

    template <typename Connect>
    static void run(State& state, Connect& connect) noexcept {
        Result result = attempt(connect);
        std::unique_lock lock(state.mu);
        if (state.abandoned) {
            lock.unlock();
            return;  // `result` closes its connection, here on this thread
        }
        state.result.emplace(std::move(result));
        state.done.signal();
    }

    Poller& poller_;
    std::shared_ptr<State> state_;
};

}  // namespace outbox::sink::detail
