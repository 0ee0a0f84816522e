// Drives one sink from the command line, as the worker will: the broker
// tests (test/sink/*.test.mjs) and the throughput check use it.
//
//   sink_tool URL [--allowed CIDRS] [--connect-timeout MS] [--ca-file FILE]
//   credentials from the environment: OUTBOX_SINK_USER, OUTBOX_SINK_PASSWORD, OUTBOX_SINK_TOKEN
//
// stdin, one command a line, fields separated by spaces and percent-encoded:
//   send TAG EVENT_ID TOPIC KEY TIMEOUT_MS PAYLOAD [HEADER_NAME HEADER_VALUE]...   (KEY "-" is NULL)
//   bench COUNT IN_FLIGHT PAYLOAD_BYTES TIMEOUT_MS     publish COUNT messages, at most IN_FLIGHT at once
// stdout, one JSON object a line:
//   {"tag":1,"acked":true,"status":200,"refused":false,"us":812,"error":""}
//   {"bench":true,"count":N,"acked":N,"failed":0,"seconds":1.2,"rate":83000,"first_error":""}
// At the end of stdin it waits for what is in flight, then exits.
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "sink/sink.hpp"
#include "sink/url.hpp"

using namespace outbox::sink;
using Clock = std::chrono::steady_clock;

namespace {

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') out += '\\', out += ch;
        else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
    return out + "\"";
}

void print(const Outcome& o) {
    std::cout << fmt::format("{{\"tag\":{},\"acked\":{},\"status\":{},\"refused\":{},\"us\":{},\"error\":{}}}\n", o.tag,
                             o.acked, o.status, o.refused, o.duration.count(), json_string(o.error));
}

// Waits until the sink has something to do (or `extra_fd` is readable, or
// `max_wait` passed), then moves it on.
bool wait_and_perform(Sink& sink, int extra_fd, int max_wait_ms) {
    pollfd fds[2] = {{sink.fd(), POLLIN, 0}, {extra_fd, POLLIN, 0}};
    int wait = max_wait_ms;
    if (auto t = sink.timeout()) wait = wait < 0 ? static_cast<int>(t->count()) : std::min<int>(wait, static_cast<int>(t->count()));
    int n = poll(fds, extra_fd >= 0 ? 2 : 1, wait);
    sink.perform();
    return n > 0 && extra_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP));
}

void bench(Sink& sink, long count, long in_flight, long payload_bytes, long timeout_ms) {
    std::string payload = "{\"data\":\"" + std::string(static_cast<std::size_t>(std::max(0L, payload_bytes - 11)), 'x') + "\"}";
    long sent = 0, acked = 0, failed = 0;
    std::string first_error;
    auto started = Clock::now();
    while (acked + failed < count) {
        while (sent < count && static_cast<long>(sink.in_flight()) < in_flight) {
            Message m;
            m.tag = static_cast<std::uint64_t>(++sent);
            m.event_id = fmt::format("00000000-0000-4000-8000-{:012d}", sent);
            m.topic = "bench";
            m.key = fmt::format("k{}", sent % 16);
            m.payload = payload;
            m.headers = {{"content-type", "application/json"}};
            m.timeout = std::chrono::milliseconds(timeout_ms);
            sink.start(std::move(m));
        }
        wait_and_perform(sink, -1, 1000);
        for (auto& o : sink.take_completed()) {
            if (o.acked) acked++;
            else {
                failed++;
                if (first_error.empty()) first_error = o.error;
            }
        }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    std::cout << fmt::format(
        "{{\"bench\":true,\"count\":{},\"in_flight\":{},\"acked\":{},\"failed\":{},\"seconds\":{:.3f},\"rate\":{:.0f},"
        "\"first_error\":{}}}\n",
        count, in_flight, acked, failed, seconds, static_cast<double>(acked) / seconds, json_string(first_error));
    std::cout.flush();
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // as in a PostgreSQL backend: hiredis writes with write(2)
    if (argc < 2) {
        std::cerr << "usage: sink_tool URL [--allowed CIDRS] [--connect-timeout MS] [--ca-file FILE]\n";
        return 2;
    }
    Options options;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--allowed") options.allowed_networks = outbox::core::NetworkList::parse(argv[i + 1]);
        else if (flag == "--connect-timeout") options.connect_timeout = std::chrono::milliseconds(std::atol(argv[i + 1]));
        else if (flag == "--ca-file") options.ca_file = argv[i + 1];
        else {
            std::cerr << "unknown option " << flag << "\n";
            return 2;
        }
    }
    Credentials credentials;
    if (const char* v = std::getenv("OUTBOX_SINK_USER")) credentials.user = v;
    if (const char* v = std::getenv("OUTBOX_SINK_PASSWORD")) credentials.password = v;
    if (const char* v = std::getenv("OUTBOX_SINK_TOKEN")) credentials.token = v;
    std::unique_ptr<Sink> sink;
    try {
        sink = make_sink(argv[1], credentials, options);
    } catch (const outbox::core::InvalidInput& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }

    std::string buffer;
    bool input_open = true;
    while (input_open || sink->in_flight() > 0 || sink->timeout()) {
        bool readable = wait_and_perform(*sink, input_open ? 0 : -1, input_open ? -1 : 1000);
        for (auto& o : sink->take_completed()) print(o);
        std::cout.flush();
        if (!readable) continue;
        char chunk[65536];
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n <= 0) {
            input_open = false;
            continue;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
            std::istringstream line(buffer.substr(0, nl));
            buffer.erase(0, nl + 1);
            std::vector<std::string> f;
            for (std::string w; line >> w;) f.push_back(outbox::sink::detail::percent_decode(w));
            if (f.empty()) continue;
            if (f[0] == "send" && f.size() >= 7) {
                Message m;
                m.tag = std::stoull(f[1]);
                m.event_id = f[2];
                m.topic = f[3];
                if (f[4] != "-") m.key = f[4];
                m.timeout = std::chrono::milliseconds(std::stol(f[5]));
                m.payload = f[6];
                for (std::size_t i = 7; i + 1 < f.size(); i += 2) m.headers.emplace_back(f[i], f[i + 1]);
                sink->start(std::move(m));
            } else if (f[0] == "bench" && f.size() == 5) {
                bench(*sink, std::stol(f[1]), std::stol(f[2]), std::stol(f[3]), std::stol(f[4]));
            } else {
                std::cerr << "bad command: " << f[0] << "\n";
                return 2;
            }
        }
        for (auto& o : sink->take_completed()) print(o);
        std::cout.flush();
    }
    return 0;
}
