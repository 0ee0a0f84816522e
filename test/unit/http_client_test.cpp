// The HTTP client against a real HTTP server on loopback (http_fixture.py).
#include "http/client.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using outbox::core::NetworkList;
using outbox::http::Client;
using outbox::http::Options;
using outbox::http::Request;
using outbox::http::Response;

namespace {

// Runs the fixture server; its port is read from its first line.
class Fixture {
public:
    explicit Fixture(const char* host = "127.0.0.1") {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe");
        pid_ = fork();
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            std::string script = std::string(OUTBOX_SOURCE_DIR) + "/test/unit/http_fixture.py";
            execlp("python3", "python3", script.c_str(), host, static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        FILE* f = fdopen(out[0], "r");
        if (fscanf(f, "%d", &port_) != 1) throw std::runtime_error("fixture did not start");
        fclose(f);
        host_ = host;
    }
    ~Fixture() {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
    std::string url(const std::string& path) const { return "http://" + host_ + ":" + std::to_string(port_) + path; }
    int port() const { return port_; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string host_;
};

Options loopback_options() {
    Options o;
    o.allowed_networks = NetworkList::parse("127.0.0.0/8");
    o.user_agent = "outbox-test";
    return o;
}

Request post(const std::string& url, std::string body = "{}") {
    static std::uint64_t tag = 0;
    Request r;
    r.tag = ++tag;
    r.url = url;
    r.body = std::move(body);
    r.headers = {"content-type: application/json", "x-test: yes", "expect:"};
    r.timeout = 5s;
    r.connect_timeout = 2s;
    return r;
}

// Drives the client the way the worker does: wait on fd() with timeout(),
// then perform(), until `count` responses are in or the deadline passes.
std::vector<Response> run(Client& client, std::size_t count, std::chrono::milliseconds deadline = 10s) {
    std::vector<Response> done;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (done.size() < count && std::chrono::steady_clock::now() < end) {
        auto wait = client.timeout().value_or(100ms);
        pollfd pfd{client.fd(), POLLIN, 0};
        poll(&pfd, 1, static_cast<int>(std::min<std::chrono::milliseconds>(wait, 100ms).count()));
        client.perform();
        for (Response& r : client.take_completed()) done.push_back(std::move(r));
    }
    return done;
}

// "<POST requests served> <connections accepted>", asked with a GET from
// Python (the client under test only POSTs); that GET is a connection too.
std::string count(const Fixture& f) {
    std::string cmd = "python3 -c \"import urllib.request,sys;print(urllib.request.urlopen('" + f.url("/count") +
                      "').read().decode())\"";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[64] = {0};
    if (fgets(buf, sizeof buf, p) == nullptr) buf[0] = 0;
    pclose(p);
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

}  // namespace

TEST(HttpClient, PostsBodyAndHeaders) {
    Fixture f;
    Client client(loopback_options());
    client.start(post(f.url("/echo"), R"({"id": 42})"));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 200);
    EXPECT_TRUE(done[0].error.empty()) << done[0].error;
    EXPECT_NE(done[0].body.find(R"("body": "{\"id\": 42}")"), std::string::npos) << done[0].body;
    EXPECT_NE(done[0].body.find(R"("x-test": "yes")"), std::string::npos);
    EXPECT_NE(done[0].body.find(R"("user-agent": "outbox-test")"), std::string::npos);
    EXPECT_EQ(done[0].body.find("100-continue"), std::string::npos);
    EXPECT_GT(done[0].duration.count(), 0);
}

TEST(HttpClient, StatusesPassThroughAndRetryAfterIsCaptured) {
    Fixture f;
    Client client(loopback_options());
    client.start(post(f.url("/status/500")));
    client.start(post(f.url("/retry-after")));
    client.start(post(f.url("/ok")));
    auto done = run(client, 3);
    ASSERT_EQ(done.size(), 3u);
    std::map<long, Response> by_status;
    for (auto& r : done) by_status[r.status] = r;
    EXPECT_EQ(by_status[500].body, "status body");
    EXPECT_EQ(by_status[503].retry_after, "7");
    EXPECT_TRUE(by_status[204].retry_after.empty());
}

TEST(HttpClient, DoesNotFollowRedirects) {
    Fixture f;
    Client client(loopback_options());
    client.start(post(f.url("/redirect")));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 302);
    EXPECT_EQ(count(f).substr(0, 2), "1 ") << "only the first request reached the server";
}

TEST(HttpClient, TimesOut) {
    Fixture f;
    Client client(loopback_options());
    Request r = post(f.url("/slow/3000"));
    r.timeout = 300ms;
    client.start(std::move(r));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 0);
    EXPECT_NE(done[0].error.find("timeout after 300 ms"), std::string::npos) << done[0].error;
}

TEST(HttpClient, ConnectionRefusedIsAClearError) {
    int port;
    {
        Fixture f;  // a port that was just free, now closed
        port = f.port();
    }
    Client client(loopback_options());
    client.start(post("http://127.0.0.1:" + std::to_string(port) + "/ok"));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 0);
    EXPECT_FALSE(done[0].refused);
    EXPECT_NE(done[0].error.find("connect"), std::string::npos) << done[0].error;
}

TEST(HttpClient, AddressGuardRefusesWithoutConnecting) {
    Fixture f("127.0.0.2");
    Options narrow = loopback_options();
    narrow.allowed_networks = NetworkList::parse("127.0.0.1/32");
    Client client(narrow);
    client.start(post(f.url("/ok")));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(done[0].refused);
    EXPECT_EQ(done[0].status, 0);
    EXPECT_NE(done[0].error.find("refused to connect to 127.0.0.2: loopback"), std::string::npos) << done[0].error;
    // "<POSTs> <connections>": the only connection is the one asking.
    EXPECT_EQ(count(f), "0 1") << "no connection reached the server";

    // Allowed: it connects.
    Client allowed(loopback_options());
    allowed.start(post(f.url("/ok")));
    auto ok = run(allowed, 1);
    ASSERT_EQ(ok.size(), 1u);
    EXPECT_EQ(ok[0].status, 204);
}

TEST(HttpClient, EmptyAllowListRefusesLoopback) {
    Fixture f;
    Options none = loopback_options();
    none.allowed_networks = NetworkList::parse("");
    Client client(none);
    client.start(post(f.url("/ok")));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_TRUE(done[0].refused);
}

TEST(HttpClient, ReadsBodiesOnlyUpToALimit) {
    Fixture f;
    Options o = loopback_options();
    o.max_body = 100;
    o.max_read = 64 * 1024;
    Client client(o);
    client.start(post(f.url("/big")));
    auto done = run(client, 1);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, 200);
    EXPECT_TRUE(done[0].error.empty()) << done[0].error;
    EXPECT_EQ(done[0].body.size(), 100u);
}

TEST(HttpClient, ManyConcurrentRequestsReuseConnections) {
    Fixture f;
    Options o = loopback_options();
    o.max_connections = 8;
    Client client(o);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 8; i++) client.start(post(f.url("/ok")));
        EXPECT_EQ(client.in_flight(), 8u);
        auto done = run(client, 8);
        ASSERT_EQ(done.size(), 8u);
        for (auto& r : done) EXPECT_EQ(r.status, 204) << r.error;
    }
    EXPECT_EQ(client.in_flight(), 0u);
    std::string c = count(f);
    int requests = 0, connections = 0;
    sscanf(c.c_str(), "%d %d", &requests, &connections);
    EXPECT_EQ(requests, 40);
    // Minus the connection that asked for the count.
    EXPECT_LE(connections - 1, 8) << "keep-alive: 40 requests over at most 8 connections";
}
