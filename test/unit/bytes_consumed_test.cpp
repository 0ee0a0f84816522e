// bytes_consumed (src/sink/nats_connection.hpp), which the NATS sink's
// reply cap counts with: what the application took out of a TCP socket,
// from two syscalls while the peer keeps sending.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "sink/nats_connection.hpp"

using namespace outbox::sink::detail;

namespace {

// A connected loopback TCP pair: {the reading end, the sending end}.
std::pair<int, int> tcp_pair() {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    int reader = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(reader, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    int sender = accept(listener, nullptr, nullptr);
    close(listener);
    return {reader, sender};
}

}  // namespace

TEST(SaturatingSince, NeverWraps) {
    EXPECT_EQ(saturating_since(10, 3), 7u);
    EXPECT_EQ(saturating_since(3, 3), 0u);
    EXPECT_EQ(saturating_since(3, 10), 0u);
}

// Bytes arriving between the received count and the queue's length made
// the difference come out below what had been read (CI: a healthy NATS
// connection closed as "more than 4194304 bytes without completing a
// message"). While the peer floods and nothing more is read, the count
// stays exactly what was read.
TEST(BytesConsumed, ExactWhileThePeerKeepsSending) {
    auto [reader, sender] = tcp_pair();
    std::atomic<bool> stop{false};
    std::thread flood([&, fd = sender] {
        char chunk[64];
        std::fill(std::begin(chunk), std::end(chunk), 'x');
        while (!stop.load(std::memory_order_relaxed))
            if (send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) std::this_thread::yield();
    });
    // Rounds of: read what is there (so the flood goes on), then count
    // without reading.
    std::uint64_t taken = 0;
    int wrong = 0;
    std::uint64_t first_wrong = 0, expected_then = 0;
    static char buf[64 * 1024];
    for (int round = 0; round < 400; round++) {
        auto n = recv(reader, buf, sizeof buf, round == 0 ? 0 : MSG_DONTWAIT);
        if (n > 0) taken += static_cast<std::uint64_t>(n);
        for (int i = 0; i < 50; i++) {
            auto consumed = bytes_consumed(reader);
            ASSERT_TRUE(consumed.has_value());
            if (*consumed != taken && wrong++ == 0) first_wrong = *consumed, expected_then = taken;
        }
    }
    stop = true;
    flood.join();
    close(reader);
    close(sender);
    EXPECT_EQ(wrong, 0) << "e.g. " << first_wrong << " instead of " << expected_then;
}
