// Drives sinks from the command line, as the worker does: the broker tests
// (test/sink/*.test.mjs) and the throughput check use it. Several URLs make
// several sinks in one process and one loop, as in the worker: a test can
// check that one broker never holds up another.
//
//   sink_tool URL [URL...] [--allowed CIDRS] [--connect-timeout MS] [--ca-file FILE] [--max-reply BYTES]
//   credentials from the environment: OUTBOX_SINK_USER, OUTBOX_SINK_PASSWORD, OUTBOX_SINK_TOKEN
//   (the same for every sink)
//
// stdin, one command a line, fields separated by spaces and percent-encoded:
//   send TAG EVENT_ID TOPIC KEY TIMEOUT_MS PAYLOAD [HEADER_NAME HEADER_VALUE]...   (KEY "-" is NULL): to sink 0
//   sendto SINK TAG EVENT_ID TOPIC KEY TIMEOUT_MS PAYLOAD [...]     the same, to the sink of the SINK-th URL
//   bench COUNT IN_FLIGHT PAYLOAD_BYTES TIMEOUT_MS     publish COUNT messages to sink 0, at most IN_FLIGHT at once
//   memory                                             this process's memory now, and its peak since the last `memory`
// stdout, one JSON object a line:
//   {"tag":1,"acked":true,"status":200,"refused":false,"us":812,"error":""}
//   {"bench":true,"count":N,"acked":N,"failed":0,"seconds":1.2,"rate":83000,"first_error":""}
//   {"memory":true,"anon_kb":N,"peak_anon_kb":N,"heap_bytes":N,"sanitizer":"address"|"thread"|""}
// At the end of stdin it waits for what is in flight, then exits.
//
// Memory: anon_kb is RssAnon (private memory in RAM: what a worker would
// add); peak_anon_kb its highest value, sampled every millisecond by a
// thread of this tool; heap_bytes what malloc has handed out and not taken
// back (mallinfo2: arena in use plus mmapped chunks). Under a sanitizer the
// figures include its shadow memory and quarantine: `sanitizer` says so.
#include <fmt/format.h>
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

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

long anon_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
    return -1;
}

// Samples RssAnon so that a peak between two `memory` commands is seen.
class MemorySampler {
public:
    MemorySampler() : thread_([this] { run(); }) {}
    ~MemorySampler() {
        stop_ = true;
        thread_.join();
    }
    long take_peak() { return peak_.exchange(anon_kb()); }

private:
    void run() {
        while (!stop_) {
            long now = anon_kb();
            long seen = peak_.load();
            while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    std::atomic<bool> stop_{false};
    std::atomic<long> peak_{0};
    std::thread thread_;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kSanitizer = "address";
#elif defined(__SANITIZE_THREAD__)
constexpr const char* kSanitizer = "thread";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr const char* kSanitizer = "address";
#elif __has_feature(thread_sanitizer)
constexpr const char* kSanitizer = "thread";
#else
constexpr const char* kSanitizer = "";
#endif
#else
constexpr const char* kSanitizer = "";
#endif

void print_memory(MemorySampler& sampler) {
    struct mallinfo2 mi = mallinfo2();
    std::cout << fmt::format(
        "{{\"memory\":true,\"anon_kb\":{},\"peak_anon_kb\":{},\"heap_bytes\":{},\"sanitizer\":\"{}\"}}\n", anon_kb(),
        sampler.take_peak(), mi.uordblks + mi.hblkhd, kSanitizer);
}

using Sinks = std::vector<std::unique_ptr<Sink>>;

std::size_t in_flight(const Sinks& sinks) {
    std::size_t n = 0;
    for (auto& s : sinks) n += s->in_flight();
    return n;
}

bool any_timeout(const Sinks& sinks) {
    for (auto& s : sinks)
        if (s->timeout()) return true;
    return false;
}

// Waits until a sink has something to do (or `extra_fd` is readable, or
// `max_wait` passed), then moves every sink on, as the worker's loop does.
bool wait_and_perform(Sinks& sinks, int extra_fd, int max_wait_ms) {
    std::vector<pollfd> fds;
    int wait = max_wait_ms;
    for (auto& s : sinks) {
        fds.push_back({s->fd(), POLLIN, 0});
        if (auto t = s->timeout()) wait = wait < 0 ? static_cast<int>(t->count()) : std::min<int>(wait, static_cast<int>(t->count()));
    }
    if (extra_fd >= 0) fds.push_back({extra_fd, POLLIN, 0});
    int n = poll(fds.data(), fds.size(), wait);
    for (auto& s : sinks) s->perform();
    return n > 0 && extra_fd >= 0 && (fds.back().revents & (POLLIN | POLLHUP));
}

void print_completed(Sinks& sinks) {
    for (auto& s : sinks)
        for (auto& o : s->take_completed()) print(o);
    std::cout.flush();
}

void bench(Sinks& sinks, long count, long in_flight, long payload_bytes, long timeout_ms) {
    Sink& sink = *sinks.front();
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
        wait_and_perform(sinks, -1, 1000);
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

// send fields from `first` on: TAG EVENT_ID TOPIC KEY TIMEOUT_MS PAYLOAD [NAME VALUE]...
Message message_from(const std::vector<std::string>& f, std::size_t first) {
    Message m;
    m.tag = std::stoull(f[first]);
    m.event_id = f[first + 1];
    m.topic = f[first + 2];
    if (f[first + 3] != "-") m.key = f[first + 3];
    m.timeout = std::chrono::milliseconds(std::stol(f[first + 4]));
    m.payload = f[first + 5];
    for (std::size_t i = first + 6; i + 1 < f.size(); i += 2) m.headers.emplace_back(f[i], f[i + 1]);
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // as in a PostgreSQL backend: hiredis writes with write(2)
    std::vector<std::string> urls;
    Options options;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) {
            urls.push_back(arg);
            continue;
        }
        if (i + 1 >= argc) {
            std::cerr << "option " << arg << " needs a value\n";
            return 2;
        }
        std::string value = argv[++i];
        if (arg == "--allowed") options.allowed_networks = outbox::core::NetworkList::parse(value);
        else if (arg == "--connect-timeout") options.connect_timeout = std::chrono::milliseconds(std::atol(value.c_str()));
        else if (arg == "--ca-file") options.ca_file = value;
        else if (arg == "--max-reply") options.max_reply = static_cast<std::size_t>(std::atol(value.c_str()));
        else {
            std::cerr << "unknown option " << arg << "\n";
            return 2;
        }
    }
    if (urls.empty()) {
        std::cerr << "usage: sink_tool URL [URL...] [--allowed CIDRS] [--connect-timeout MS] [--ca-file FILE] "
                     "[--max-reply BYTES]\n";
        return 2;
    }
    Credentials credentials;
    if (const char* v = std::getenv("OUTBOX_SINK_USER")) credentials.user = v;
    if (const char* v = std::getenv("OUTBOX_SINK_PASSWORD")) credentials.password = v;
    if (const char* v = std::getenv("OUTBOX_SINK_TOKEN")) credentials.token = v;
    Sinks sinks;
    try {
        for (const auto& url : urls) sinks.push_back(make_sink(url, credentials, options));
    } catch (const outbox::core::InvalidInput& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    MemorySampler sampler;

    std::string buffer;
    bool input_open = true;
    while (input_open || in_flight(sinks) > 0 || any_timeout(sinks)) {
        bool readable = wait_and_perform(sinks, input_open ? 0 : -1, input_open ? -1 : 1000);
        print_completed(sinks);
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
                sinks.front()->start(message_from(f, 1));
            } else if (f[0] == "sendto" && f.size() >= 8 && std::stoul(f[1]) < sinks.size()) {
                sinks[std::stoul(f[1])]->start(message_from(f, 2));
            } else if (f[0] == "bench" && f.size() == 5) {
                bench(sinks, std::stol(f[1]), std::stol(f[2]), std::stol(f[3]), std::stol(f[4]));
            } else if (f[0] == "memory") {
                print_memory(sampler);
            } else {
                std::cerr << "bad command: " << f[0] << "\n";
                return 2;
            }
        }
        print_completed(sinks);
    }
    // Sinks that close off this thread (librdkafka's producers) finish
    // first: LeakSanitizer checks at exit.
    sinks.clear();
    wait_for_closed(std::chrono::seconds(10));
    return 0;
}
