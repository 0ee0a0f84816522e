// The HTTP client against a real HTTP server on loopback (http_fixture.py).
// Every request goes to 127.0.0.1 or 127.0.0.2; tests wait for conditions
// with deadlines and never assert on speed.
#include "http/client.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <malloc.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using outbox::core::NetworkList;
using outbox::http::Client;
using outbox::http::Options;
using outbox::http::Request;
using outbox::http::Response;

namespace {

const std::string kFixture = std::string(OUTBOX_SOURCE_DIR) + "/test/unit/http_fixture.py";

// Runs http_fixture.py; its port is read from its first line of output.
class Fixture {
public:
    explicit Fixture(std::string host = "127.0.0.1", std::string cert = "", std::string key = "")
        : host_(std::move(host)) {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork");
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            if (cert.empty())
                execlp("python3", "python3", kFixture.c_str(), host_.c_str(), static_cast<char*>(nullptr));
            else
                execlp("python3", "python3", kFixture.c_str(), host_.c_str(), cert.c_str(), key.c_str(),
                       static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        FILE* f = fdopen(out[0], "r");
        int got = fscanf(f, "%d", &port_);
        fclose(f);
        if (got != 1) {
            stop();
            throw std::runtime_error("the HTTP fixture did not start");
        }
        scheme_ = cert.empty() ? "http" : "https";
    }
    ~Fixture() { stop(); }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    std::string url(const std::string& path) const {
        return scheme_ + "://" + host_ + ":" + std::to_string(port_) + path;
    }
    int port() const { return port_; }

    // {POST requests served, connections accepted}, asked with a GET from
    // Python (the client under test only POSTs); that GET is a connection
    // too and is already included in the connection count.
    std::pair<int, int> count() const {
        std::string cmd = "python3 -c \"import urllib.request,ssl;print(urllib.request.urlopen('" + url("/count") +
                          "',context=ssl._create_unverified_context()).read().decode())\"";
        FILE* p = popen(cmd.c_str(), "r");
        if (!p) throw std::runtime_error("popen");
        int requests = -1, connections = -1;
        if (fscanf(p, "%d %d", &requests, &connections) != 2) requests = connections = -1;
        pclose(p);
        return {requests, connections};
    }

private:
    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    pid_t pid_ = -1;
    int port_ = 0;
    std::string host_;
    std::string scheme_;
};

Options loopback_options() {
    Options o;
    o.allowed_networks = NetworkList::parse("127.0.0.0/8");
    o.user_agent = "outbox-test";
    return o;
}

std::uint64_t next_tag() {
    static std::uint64_t tag = 0;
    return ++tag;
}

Request post(const std::string& url, std::string body = "{}") {
    Request r;
    r.tag = next_tag();
    r.url = url;
    r.body = std::move(body);
    r.headers = {"content-type: application/json", "x-test: yes", "expect:"};
    r.timeout = 10s;
    r.connect_timeout = 5s;
    return r;
}

// Drives the client the way the worker does: poll() on fd() for at most
// timeout(), then perform() and take_completed(), until `count` responses
// are in or the deadline passes. No extra wake-ups: if fd() or timeout()
// failed to announce work, the loop would sleep until the deadline and the
// test would fail.
std::vector<Response> run(Client& client, std::size_t count, std::chrono::milliseconds deadline = 20s) {
    std::vector<Response> done;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (done.size() < count) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) break;
        auto wait = std::min(client.timeout().value_or(left), left);
        pollfd pfd{client.fd(), POLLIN, 0};
        poll(&pfd, 1, static_cast<int>(wait.count()));
        client.perform();
        for (Response& r : client.take_completed()) done.push_back(std::move(r));
    }
    return done;
}

Response run_one(Client& client, Request request) {
    std::uint64_t tag = request.tag;
    client.start(std::move(request));
    auto done = run(client, 1);
    if (done.size() != 1) throw std::runtime_error("no response before the deadline");
    EXPECT_EQ(done[0].tag, tag);
    return std::move(done[0]);
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port() {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    close(s);
    return ntohs(a.sin_port);
}

std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (readdir(d)) n++;
        closedir(d);
    }
    return n;
}

// A self-signed certificate for IP 127.0.0.1 in a temporary directory.
struct Certificate {
    std::string dir, cert, key;
    Certificate() {
        char tmpl[] = "/tmp/outbox-http-test-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir = tmpl;
        cert = dir + "/cert.pem";
        key = dir + "/key.pem";
        std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
                          " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                          key + " -out " + cert + " >/dev/null 2>&1";
        ok = std::system(cmd.c_str()) == 0;
    }
    ~Certificate() { std::system(("rm -rf " + dir).c_str()); }
    bool ok = false;
};

}  // namespace

TEST(HttpClient, PostsTheExactBodyAndHeaders) {
    Fixture f;
    Client client(loopback_options());
    // A NUL byte inside: the body's size is passed, not its strlen.
    std::string body("{\"id\": 42}\0!", 12);
    Response r = run_one(client, post(f.url("/echo"), body));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_FALSE(r.refused);
    EXPECT_NE(r.body.find(R"("method": "POST")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("path": "/echo")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("length": 12)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("body": "{\"id\": 42}\u0000!")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("content-type": "application/json")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("content-length": "12")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("x-test": "yes")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("user-agent": "outbox-test")"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(R"("expect")"), std::string::npos) << "an empty 'expect:' line removes the header";
    EXPECT_GT(r.duration.count(), 0);
}

TEST(HttpClient, StatusesPassThrough) {
    Fixture f;
    Client client(loopback_options());
    const std::vector<long> statuses = {200, 201, 202, 299, 301, 400, 404, 409, 410, 422, 429, 500, 502, 504};
    std::map<std::uint64_t, long> expected;
    for (long status : statuses) {
        Request r = post(f.url("/status/" + std::to_string(status)));
        expected[r.tag] = status;
        client.start(std::move(r));
    }
    auto done = run(client, statuses.size());
    ASSERT_EQ(done.size(), statuses.size());
    for (const Response& r : done) {
        ASSERT_TRUE(expected.count(r.tag)) << r.tag;
        EXPECT_EQ(r.status, expected[r.tag]);
        EXPECT_TRUE(r.error.empty()) << r.error;
        EXPECT_EQ(r.body, "status body");
        EXPECT_TRUE(r.retry_after.empty());
    }
}

TEST(HttpClient, CapturesRetryAfter) {
    Fixture f;
    Client client(loopback_options());
    Response r = run_one(client, post(f.url("/retry-after")));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.retry_after, "7");
    // Any letter case; blanks trimmed.
    Response odd = run_one(client, post(f.url("/retry-after-odd")));
    EXPECT_EQ(odd.status, 429);
    EXPECT_EQ(odd.retry_after, "120");
    // The next response on the same client has none.
    Response ok = run_one(client, post(f.url("/ok")));
    EXPECT_EQ(ok.status, 204);
    EXPECT_TRUE(ok.retry_after.empty());
}

TEST(HttpClient, InterimResponseHeadersDoNotLeak) {
    Fixture f;
    Client client(loopback_options());
    // "100 Continue" from the fixture carries Retry-After: 99; the final
    // 200 has none.
    Request r = post(f.url("/echo"), std::string(4096, 'a'));
    r.headers = {"content-type: application/json", "expect: 100-continue"};
    Response resp = run_one(client, std::move(r));
    EXPECT_EQ(resp.status, 200);
    EXPECT_NE(resp.body.find(R"("expect": "100-continue")"), std::string::npos) << "the interim response was sent";
    EXPECT_EQ(resp.retry_after, "");
}

TEST(HttpClient, DoesNotFollowRedirects) {
    Fixture f;
    Client client(loopback_options());
    Response r = run_one(client, post(f.url("/redirect")));
    EXPECT_EQ(r.status, 302);
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(f.count().first, 1) << "only the first request reached the server";
}

TEST(HttpClient, RequestTimeoutIsAnErrorWithoutStatus) {
    Fixture f;
    Client client(loopback_options());
    Request req = post(f.url("/slow/5000"));
    req.timeout = 300ms;
    Response r = run_one(client, std::move(req));
    EXPECT_EQ(r.status, 0);
    EXPECT_FALSE(r.refused);
    EXPECT_EQ(r.error, "timeout after 300 ms");
}

TEST(HttpClient, ConnectTimeoutIsNamedAsSuch) {
    // A listener whose accept queue is full: the kernel drops further SYNs,
    // so connecting hangs (loopback only, nothing leaves the machine).
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(listener, 0), 0);
    socklen_t len = sizeof a;
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    std::vector<int> fillers;
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(s);
    }
    Client client(loopback_options());
    Request req = post("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/ok");
    req.connect_timeout = 300ms;
    req.timeout = 10s;
    Response r = run_one(client, std::move(req));
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error, "connect timeout after 300 ms");
    for (int s : fillers) close(s);
    close(listener);
}

TEST(HttpClient, ConnectionRefusedIsAClearError) {
    Client client(loopback_options());
    Response r = run_one(client, post("http://127.0.0.1:" + std::to_string(closed_port()) + "/ok"));
    EXPECT_EQ(r.status, 0);
    EXPECT_FALSE(r.refused) << "refused by the peer, not by the address guard";
    EXPECT_EQ(r.error.rfind("connection refused: ", 0), 0u) << r.error;
}

TEST(HttpClient, OnlyHttpAndHttps) {
    Client client(loopback_options());
    Response r = run_one(client, post("ftp://127.0.0.1:" + std::to_string(closed_port()) + "/"));
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error.rfind("unsupported URL scheme", 0), 0u) << r.error;
}

// A peer that answers bytes that are no HTTP response: libcurl says
// "unsupported protocol", which is about the answer here, not the URL.
TEST(HttpClient, AGarbledResponseIsNamedAsSuch) {
    Fixture f;
    Client client(loopback_options());
    Response r = run_one(client, post(f.url("/garbage")));
    EXPECT_EQ(r.status, 0);
    EXPECT_FALSE(r.refused);
    EXPECT_EQ(r.error.rfind("invalid response: ", 0), 0u) << r.error;
}

// libcurl keeps a handle's header buffer across curl_easy_reset(): a pool
// of handles that read header bombs would hold 300 kB each for good.
TEST(HttpClient, HeaderBombsLeaveNothingInThePool) {
    Fixture f;
    Client client(loopback_options());
    if (mallinfo2().uordblks == 0) GTEST_SKIP() << "malloc statistics unavailable (a sanitizer's allocator)";
    run_one(client, post(f.url("/ok")));  // libcurl's own one-time allocations
    std::size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 40; i++) client.start(post(f.url("/header-bomb")));
    auto done = run(client, 40);
    ASSERT_EQ(done.size(), 40u);
    for (const Response& r : done) EXPECT_EQ(r.status, 0) << "over max_read";
    std::size_t after = mallinfo2().uordblks;
    EXPECT_LT(after, before + 4 * 1024 * 1024) << "heap in use grew from " << before << " to " << after << " bytes";
}

TEST(HttpClient, AddressGuardRefusesWithoutConnecting) {
    Fixture f("127.0.0.2");
    Options narrow = loopback_options();
    narrow.allowed_networks = NetworkList::parse("127.0.0.1/32");
    Client client(narrow);
    Response r = run_one(client, post(f.url("/ok")));
    EXPECT_TRUE(r.refused);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error,
              "refused to connect to 127.0.0.2: loopback address; add it to outbox.allowed_networks to allow it");
    // The only connection the fixture saw is the one asking for the count.
    EXPECT_EQ(f.count(), std::make_pair(0, 1)) << "no connection reached the server";

    // Allowed by 127.0.0.0/8: it connects.
    Client allowed(loopback_options());
    Response ok = run_one(allowed, post(f.url("/ok")));
    EXPECT_FALSE(ok.refused);
    EXPECT_EQ(ok.status, 204);
}

TEST(HttpClient, EmptyAllowListRefusesLoopback) {
    Fixture f;
    Options none = loopback_options();
    none.allowed_networks = NetworkList::parse("");
    Client client(none);
    Response r = run_one(client, post(f.url("/ok")));
    EXPECT_TRUE(r.refused);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error.rfind("refused to connect to 127.0.0.1: loopback address", 0), 0u) << r.error;
    EXPECT_EQ(f.count().first, 0);
}

TEST(HttpClient, NewOptionsApplyToLaterRequests) {
    Fixture f;
    Client client(loopback_options());
    EXPECT_EQ(run_one(client, post(f.url("/ok"))).status, 204);
    Options none = loopback_options();
    none.allowed_networks = NetworkList::parse("");
    client.set_options(none);
    Response r = run_one(client, post(f.url("/ok")));
    EXPECT_TRUE(r.refused) << "the cached connection is not used to bypass the guard";
    client.set_options(loopback_options());
    EXPECT_EQ(run_one(client, post(f.url("/ok"))).status, 204);
}

TEST(HttpClient, ProxyFromTheEnvironmentIsIgnored) {
    // A proxy would hide the real destination from the address guard.
    Fixture f;
    std::string proxy = "http://127.0.0.1:" + std::to_string(closed_port());
    setenv("http_proxy", proxy.c_str(), 1);
    setenv("HTTP_PROXY", proxy.c_str(), 1);
    setenv("all_proxy", proxy.c_str(), 1);
    Client client(loopback_options());
    Response r = run_one(client, post(f.url("/ok")));
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    EXPECT_EQ(r.status, 204) << r.error;
}

TEST(HttpClient, KeepsOnlyTheStartOfALargeBody) {
    Fixture f;
    Options o = loopback_options();
    o.max_body = 100;
    o.max_read = 4 * 1024 * 1024;  // reads all of the 1 MB
    Client client(o);
    Response r = run_one(client, post(f.url("/big")));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.body, std::string(100, 'x'));
}

TEST(HttpClient, StopsReadingAfterMaxReadAndKeepsTheStatus) {
    Fixture f;
    Options o = loopback_options();
    o.max_body = 100;
    o.max_read = 64 * 1024;
    Client client(o);
    Response big = run_one(client, post(f.url("/big")));
    EXPECT_EQ(big.status, 200);
    EXPECT_TRUE(big.error.empty()) << big.error;
    EXPECT_EQ(big.body, std::string(100, 'x'));
    // A body that never ends: only the cut-off finishes this transfer
    // before its timeout.
    Request endless = post(f.url("/endless"));
    endless.timeout = 15s;
    Response r = run_one(client, std::move(endless));
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.body, std::string(100, 'y'));
}

// Every header line costs libcurl's parser (and the worker's loop) time: a
// peer's headers are read up to max_read, not up to libcurl's 300 kB.
TEST(HttpClient, StopsReadingHeadersAfterMaxRead) {
    Fixture f;
    Options o = loopback_options();
    o.max_read = 8 * 1024;
    Client client(o);
    Response bomb = run_one(client, post(f.url("/header-bomb")));
    EXPECT_EQ(bomb.status, 0);
    EXPECT_EQ(bomb.error, "invalid response: headers over 8192 bytes");
    Response ok = run_one(client, post(f.url("/retry-after")));
    EXPECT_EQ(ok.status, 503) << ok.error;
    EXPECT_EQ(ok.retry_after, "7");
}

TEST(HttpClient, FiftyConcurrentRequestsAndKeepAlive) {
    Fixture f;
    Client client(loopback_options());  // keeps up to 64 connections
    for (int round = 0; round < 2; round++) {
        std::set<std::uint64_t> tags;
        for (int i = 0; i < 50; i++) {
            Request r = post(f.url("/ok"));
            tags.insert(r.tag);
            client.start(std::move(r));
        }
        EXPECT_EQ(client.in_flight(), 50u);
        auto done = run(client, 50);
        ASSERT_EQ(done.size(), 50u);
        for (const Response& r : done) {
            EXPECT_EQ(r.status, 204) << r.error;
            EXPECT_EQ(tags.erase(r.tag), 1u) << "each request answered once";
        }
        EXPECT_EQ(client.in_flight(), 0u);
    }
    auto [requests, connections] = f.count();
    EXPECT_EQ(requests, 100);
    EXPECT_LE(connections - 1, 50) << "the second round reused the first round's connections";
}

TEST(HttpClient, ConnectionCacheIsBoundedByMaxConnections) {
    Fixture f;
    Options o = loopback_options();
    o.max_connections = 8;
    Client client(o);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 8; i++) client.start(post(f.url("/ok")));
        auto done = run(client, 8);
        ASSERT_EQ(done.size(), 8u);
        for (auto& r : done) EXPECT_EQ(r.status, 204) << r.error;
    }
    auto [requests, connections] = f.count();
    EXPECT_EQ(requests, 40);
    EXPECT_LE(connections - 1, 8) << "40 requests over at most 8 connections";
}

TEST(HttpClient, PerformNeverBlocksAndTimeoutTracksWork) {
    Fixture f;
    Client client(loopback_options());
    EXPECT_FALSE(client.timeout().has_value()) << "nothing in flight";
    client.start(post(f.url("/slow/1000")));
    EXPECT_TRUE(client.timeout().has_value());
    for (int i = 0; i < 5; i++) {
        client.perform();  // would return only after the response if it blocked
        EXPECT_TRUE(client.take_completed().empty());
        EXPECT_EQ(client.in_flight(), 1u);
        ASSERT_TRUE(client.timeout().has_value());
    }
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 200);
    EXPECT_EQ(client.in_flight(), 0u);
    EXPECT_FALSE(client.timeout().has_value()) << "nothing in flight";
}

TEST(HttpClient, DestructorReleasesEverythingWithTransfersInFlight) {
    Fixture f;
    std::size_t before = open_fds();
    {
        Client client(loopback_options());
        EXPECT_EQ(run_one(client, post(f.url("/ok"))).status, 204);  // a cached connection
        for (int i = 0; i < 3; i++) client.start(post(f.url("/slow/3000")));
        for (int i = 0; i < 20 && client.take_completed().empty(); i++) {
            pollfd pfd{client.fd(), POLLIN, 0};
            poll(&pfd, 1, 10);
            client.perform();
        }
        EXPECT_EQ(client.in_flight(), 3u);
        EXPECT_GT(open_fds(), before);
    }
    EXPECT_EQ(open_fds(), before) << "epoll fd and sockets closed";
}

TEST(HttpClient, VerifiesTlsCertificates) {
    Certificate c;
    if (!c.ok) GTEST_SKIP() << "openssl could not make a test certificate";
    Fixture f("127.0.0.1", c.cert, c.key);

    // Not trusted: the system's CAs do not include it.
    Client untrusted(loopback_options());
    Response r = run_one(untrusted, post(f.url("/ok")));
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error.rfind("TLS certificate verification failed: ", 0), 0u) << r.error;

    // Trusted through ca_file.
    Options trusting = loopback_options();
    trusting.ca_file = c.cert;
    Client trusted(trusting);
    Response ok = run_one(trusted, post(f.url("/echo")));
    EXPECT_EQ(ok.status, 200) << ok.error;

    // Trusted, but issued for 127.0.0.1 and served from 127.0.0.2.
    Fixture other("127.0.0.2", c.cert, c.key);
    Response wrong_host = run_one(trusted, post(other.url("/ok")));
    EXPECT_EQ(wrong_host.status, 0);
    EXPECT_EQ(wrong_host.error.rfind("TLS certificate verification failed: ", 0), 0u) << wrong_host.error;

    // A CA file that cannot be read.
    Options missing = loopback_options();
    missing.ca_file = c.dir + "/missing.pem";
    Client broken(missing);
    Response bad = run_one(broken, post(f.url("/ok")));
    EXPECT_EQ(bad.status, 0);
    EXPECT_NE(bad.error.find("TLS"), std::string::npos) << bad.error;

    EXPECT_EQ(f.count().first, 1) << "only the trusted request was served";
    EXPECT_EQ(other.count().first, 0);
}
