// The Connector (src/sink/connector.hpp): a blocking connect on a thread of
// its own, with every signal blocked, handed back through the sink's epoll
// set; an abandoned attempt is destroyed by its own thread.
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "sink/connector.hpp"

using namespace outbox::sink::detail;
using namespace std::chrono_literals;

namespace {

// Where and whether a result was destroyed.
struct Record {
    std::mutex mu;
    std::condition_variable cv;
    bool destroyed = false;
    std::thread::id destroyed_on;
};

// A "connection": owns its record and notes its destruction.
struct Made {
    std::string error;
    std::shared_ptr<Record> record;
    bool signals_blocked = false;  // in the thread that made it

    Made() = default;
    Made(Made&&) = default;
    Made& operator=(Made&&) = default;
    ~Made() {
        if (!record) return;
        std::lock_guard lock(record->mu);
        record->destroyed = true;
        record->destroyed_on = std::this_thread::get_id();
        record->cv.notify_all();
    }
};

bool readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

bool all_signals_blocked() {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    for (int s : {SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGURG, SIGALRM, SIGQUIT})
        if (!sigismember(&mask, s)) return false;
    return true;
}

}  // namespace

TEST(Connector, HandsTheResultOverThroughThePoller) {
    Poller poller;
    Connector<Made> connector(poller);
    EXPECT_FALSE(connector.running());
    connector.start([] {
        Made m;
        m.signals_blocked = all_signals_blocked();
        return m;
    });
    EXPECT_TRUE(connector.running());
    ASSERT_TRUE(readable(poller.fd(), 10000));
    auto made = connector.take();
    ASSERT_TRUE(made.has_value());
    EXPECT_TRUE(made->error.empty());
    EXPECT_TRUE(made->signals_blocked) << "the connect thread must block every signal (PostgreSQL's handlers)";
    EXPECT_FALSE(connector.running());
    EXPECT_FALSE(readable(poller.fd(), 0));  // its eventfd left the set
}

TEST(Connector, TheCallersSignalMaskIsUntouched) {
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    Poller poller;
    Connector<Made> connector(poller);
    connector.start([] { return Made{}; });
    pthread_sigmask(SIG_SETMASK, nullptr, &after);
    EXPECT_EQ(sigismember(&before, SIGTERM), sigismember(&after, SIGTERM));
    EXPECT_EQ(sigismember(&before, SIGUSR1), sigismember(&after, SIGUSR1));
    ASSERT_TRUE(readable(poller.fd(), 10000));
    EXPECT_TRUE(connector.take().has_value());
}

TEST(Connector, NothingToTakeWhileItRuns) {
    Poller poller;
    Connector<Made> connector(poller);
    std::mutex mu;
    std::condition_variable cv;
    bool go = false;
    connector.start([&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return go; });
        return Made{};
    });
    EXPECT_FALSE(connector.take().has_value());
    EXPECT_FALSE(readable(poller.fd(), 50));
    {
        std::lock_guard lock(mu);
        go = true;
    }
    cv.notify_all();
    ASSERT_TRUE(readable(poller.fd(), 10000));
    EXPECT_TRUE(connector.take().has_value());
}

TEST(Connector, AnExceptionIsAFailedConnect) {
    Poller poller;
    Connector<Made> connector(poller);
    connector.start([]() -> Made { throw std::runtime_error("no route"); });
    ASSERT_TRUE(readable(poller.fd(), 10000));
    auto made = connector.take();
    ASSERT_TRUE(made.has_value());
    EXPECT_EQ(made->error, "could not connect: no route");
}

TEST(Connector, AnAbandonedAttemptIsDestroyedByItsOwnThread) {
    auto record = std::make_shared<Record>();
    auto gate = std::make_shared<std::atomic<bool>>(false);
    {
        Poller poller;
        Connector<Made> connector(poller);
        connector.start([record, gate] {
            while (!gate->load()) std::this_thread::sleep_for(1ms);  // a slow handshake
            Made m;
            m.record = record;
            return m;
        });
        // The sink goes away (endpoint changed, worker exiting) mid-connect:
        // nothing waits for the thread.
    }
    gate->store(true);
    std::unique_lock lock(record->mu);
    ASSERT_TRUE(record->cv.wait_for(lock, 10s, [&] { return record->destroyed; }));
    EXPECT_NE(record->destroyed_on, std::this_thread::get_id());
}

TEST(Connector, AResultNotTakenIsDestroyedWithTheConnector) {
    auto record = std::make_shared<Record>();
    {
        Poller poller;
        Connector<Made> connector(poller);
        connector.start([record] {
            Made m;
            m.record = record;
            return m;
        });
        ASSERT_TRUE(readable(poller.fd(), 10000));
    }
    std::unique_lock lock(record->mu);
    EXPECT_TRUE(record->destroyed);
    EXPECT_EQ(record->destroyed_on, std::this_thread::get_id());
}
