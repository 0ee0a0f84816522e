// The sinks' reply handling, fuzzed through the Sink interface as the
// worker drives it (src/sink/sink.hpp): an in-process peer on 127.0.0.1
// answers one publish with the fuzzer's bytes.
//
// Input: first "=====\n" second (a text marker: AMQP's frames are full of
// NUL bytes). The peer sends `first` when the sink connects
// and `second` once the sink has published (its bytes contain `trigger`),
// then, 10 ms later, closes. In `second`, "$R" becomes the reply subject of the client's
// last PUB/HPUB line and "$S" the sid of its last SUB line (NATS: a PubAck
// must be addressed to them). With `pong`, every PING the client sends is
// answered with PONG (libnats gives up on a PONG that comes before its
// PING). The outcome must come, and in time.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "fuzz.hpp"
#include "sink/sink.hpp"

namespace fuzz {

class Peer {
public:
    Peer() {
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listener_, 16) != 0) std::abort();
        socklen_t len = sizeof a;
        getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    int port() const { return port_; }

    // Publishes one message through a sink for `url` (with PORT in it
    // replaced) while playing `input`; returns once its outcome came.
    void run(const std::string& url_template, std::string_view input, std::string_view trigger, bool pong = false) {
        constexpr std::string_view kMarker = "=====\n";
        std::size_t cut = input.find(kMarker);
        std::string_view p[2] = {input.substr(0, cut),
                                 cut == std::string_view::npos ? std::string_view() : input.substr(cut + kMarker.size())};
        std::string url = url_template;
        url.replace(url.find("PORT"), 4, std::to_string(port_));
        outbox::sink::Options options;
        options.allowed_networks = outbox::core::NetworkList::parse("127.0.0.1/32");
        options.connect_timeout = std::chrono::milliseconds(150);
        options.max_reply = 4096;
        auto sink = outbox::sink::make_sink(url, {}, options);
        outbox::sink::Message m;
        m.tag = 1;
        m.event_id = "0190d5d0-0000-7000-8000-000000000001";
        m.topic = "fuzz.event";
        m.key = "k1";
        m.payload = "{\"n\":1}";
        m.headers = {{"x-fuzz", "1"}};
        m.timeout = std::chrono::milliseconds(150);
        sink->start(m);
        int conn = -1;
        bool sent_second = false, closed = false;
        auto sent_at = std::chrono::steady_clock::now();
        std::string heard, reply, sid = "1";
        std::size_t pinged = 0;  // PINGs answered up to here
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        bool done = false;
        while (!done) {
            FUZZ_CHECK(std::chrono::steady_clock::now() < deadline, "the outcome comes by its deadline");
            pollfd fds[3] = {{sink->fd(), POLLIN, 0}, {listener_, POLLIN, 0}, {conn, POLLIN, 0}};
            int wait = 20;
            if (auto t = sink->timeout()) wait = std::min<int>(wait, static_cast<int>(t->count()));
            poll(fds, conn >= 0 ? 3 : 2, wait);
            if (conn < 0) {
                conn = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (conn >= 0) send_all(conn, p[0]);
            }
            if (conn >= 0) {
                char buf[4096];
                ssize_t n;
                while ((n = recv(conn, buf, sizeof buf, 0)) > 0) {
                    heard.append(buf, static_cast<std::size_t>(n));
                    note(heard, reply, sid);
                }
                for (std::size_t at = heard.find("PING\r\n", pinged); pong && at != std::string::npos;
                     at = heard.find("PING\r\n", pinged)) {
                    pinged = at + 6;
                    send_all(conn, "PONG\r\n");
                }
                if (!sent_second && heard.find(trigger) != std::string::npos) {
                    sent_second = true;
                    std::string second(p[1]);
                    substitute(second, "$R", reply);
                    substitute(second, "$S", sid);
                    send_all(conn, second);
                    sent_at = std::chrono::steady_clock::now();
                }
                // Closed a moment later: libnats hands a PubAck to another
                // thread, and a close at once would overtake it.
                if (sent_second && !closed && std::chrono::steady_clock::now() - sent_at > std::chrono::milliseconds(10)) {
                    closed = true;
                    shutdown(conn, SHUT_WR);
                }
            }
            sink->perform();
            for (const auto& o : sink->take_completed()) {
                // OUTBOX_FUZZ_VERBOSE=1: what each input came to (for the corpus).
                if (std::getenv("OUTBOX_FUZZ_VERBOSE"))
                    std::fprintf(stderr, "outcome: acked %d status %d error %s\n", o.acked, o.status, o.error.c_str());
                FUZZ_CHECK(o.tag == 1, "the outcome of the message");
                FUZZ_CHECK(o.acked || !o.error.empty(), "a failure has a reason");
                done = true;
            }
        }
        sink.reset();
        if (conn >= 0) close(conn);
        // Connections the sink opened and closed again wait in the backlog.
        while ((conn = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) close(conn);
    }

private:
    static void send_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                pollfd w{fd, POLLOUT, 0};
                if (n < 0 && errno == EAGAIN && poll(&w, 1, 100) > 0) continue;
                return;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    static void substitute(std::string& s, std::string_view from, const std::string& to) {
        for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
            s.replace(at, from.size(), to);
    }
    // The reply subject of the last PUB/HPUB and the sid of the last SUB.
    static void note(const std::string& heard, std::string& reply, std::string& sid) {
        for (std::size_t at = 0; (at = heard.find("PUB ", at)) != std::string::npos; at += 4) {
            std::size_t eol = heard.find("\r\n", at);
            std::string line = heard.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
            std::size_t a = line.find(' ', 4), b = a == std::string::npos ? a : line.find(' ', a + 1);
            if (b != std::string::npos) reply = line.substr(a + 1, b - a - 1);
        }
        for (std::size_t at = 0; (at = heard.find("SUB ", at)) != std::string::npos; at += 4) {
            if (at > 0 && heard[at - 1] == 'N') continue;  // UNSUB
            std::size_t eol = heard.find("\r\n", at);
            std::string line = heard.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
            std::size_t last = line.find_last_not_of(' ');
            std::size_t space = line.rfind(' ', last);
            if (space != std::string::npos) sid = line.substr(space + 1, last - space);
        }
    }

    int listener_ = -1;
    int port_ = 0;
};

}  // namespace fuzz
