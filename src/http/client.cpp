#include "client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace outbox::http {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Response headers up to this size leave a handle fit to be used again.
constexpr std::size_t kPooledHeaderBytes = 16 * 1024;

// One transfer: everything libcurl points into must live here until the
// transfer is finished.
struct Transfer {
    CURL* easy = nullptr;        // owned by the client (pool or active map)
    curl_slist* headers = nullptr;
    Request request;
    Response response;
    const Options* options = nullptr;
    SteadyClock::time_point started;
    std::size_t bytes_read = 0;
    std::size_t header_bytes = 0;  // of the response headers, interim ones included
    bool cut_off = false;       // stopped reading the body at max_read
    bool headers_cut_off = false;  // stopped reading headers at max_read
    std::string refused_reason; // set by the address guard
    bool attempted = false;     // the guard let a connection attempt through
    char error_buffer[CURL_ERROR_SIZE] = {0};

    Transfer() = default;
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;
    ~Transfer() {
        if (headers) curl_slist_free_all(headers);
    }
};

bool iequals_prefix(const char* data, std::size_t len, std::string_view prefix) {
    if (len < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); i++) {
        char c = data[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != prefix[i]) return false;
    }
    return true;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return std::string(s);
}

size_t on_body(char* data, size_t size, size_t nmemb, void* userdata) noexcept {
    auto* t = static_cast<Transfer*>(userdata);
    size_t len = size * nmemb;
    t->bytes_read += len;
    if (t->response.body.size() < t->options->max_body) {
        size_t keep = std::min(len, t->options->max_body - t->response.body.size());
        try {
            t->response.body.append(data, keep);
        } catch (...) {
            return 0;
        }
    }
    if (t->bytes_read > t->options->max_read) {
        t->cut_off = true;
        return 0;  // enough: the status is what matters
    }
    return len;
}

size_t on_header(char* data, size_t size, size_t nmemb, void* userdata) noexcept {
    auto* t = static_cast<Transfer*>(userdata);
    size_t len = size * nmemb;
    t->header_bytes += len;
    // libcurl reads up to 300 kB of headers (interim responses included)
    // and parses every line, which costs the worker's loop milliseconds
    // per transfer: a peer sending header floods at each of its slots
    // held every other endpoint's requests for hundreds of milliseconds.
    if (t->header_bytes > t->options->max_read) {
        t->headers_cut_off = true;
        return 0;
    }
    try {
        if (iequals_prefix(data, len, "http/")) {
            t->response.retry_after.clear();  // a new (possibly interim) response begins
            t->response.headers.clear();
        } else {
            if (iequals_prefix(data, len, "retry-after:"))
                t->response.retry_after = trim(std::string_view(data + 12, len - 12));
            std::string line = trim(std::string_view(data, len));
            if (line.find(':') != std::string::npos &&
                t->response.headers.size() + line.size() < t->options->max_headers)
                t->response.headers.append(line).push_back('\n');
        }
    } catch (...) {
        return 0;
    }
    return len;
}

// The address guard. Records why the address is refused in the transfer
// and returns false, or returns true when it may be used.
bool guard(Transfer* t, const std::optional<core::IpAddress>& ip) noexcept {
    try {
        if (!ip) {
            t->refused_reason = "refused to connect: unknown address family";
            return false;
        }
        if (core::address_allowed(*ip, t->options->allowed_networks)) return true;
        auto range = core::special_range(*ip);
        t->refused_reason =
            fmt::format("refused to connect to {}: {} address; add it to outbox.allowed_networks to allow it",
                        ip->to_string(), range ? *range : "special-purpose");
        return false;
    } catch (...) {
        if (t->refused_reason.empty()) t->refused_reason = "refused to connect: address not allowed";
        return false;
    }
}

// Every address libcurl is about to connect to: refused ones get no socket,
// so no connection is attempted.
curl_socket_t on_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) noexcept {
    auto* t = static_cast<Transfer*>(clientp);
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    if (!guard(t, core::IpAddress::from_sockaddr(&address->addr))) return CURL_SOCKET_BAD;
    t->attempted = true;
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// Before each request is sent, on a new or a reused connection: a
// connection kept alive from before a reload that narrowed
// allowed_networks must not be used to bypass the guard.
int on_prereq(void* clientp, char* primary_ip, char*, int, int) noexcept {
    auto* t = static_cast<Transfer*>(clientp);
    std::string_view text = primary_ip ? primary_ip : "";
    text = text.substr(0, text.find('%'));  // an IPv6 zone, if any
    return guard(t, core::IpAddress::parse(text)) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

// A readable reason for a transfer that got no HTTP response.
std::string describe_error(CURL* easy, CURLcode code, const Transfer& t) {
    std::string detail = t.error_buffer[0] ? t.error_buffer : curl_easy_strerror(code);
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT: {
            // While connecting, libcurl applies the smaller of the two
            // limits. A transfer that never connected and ended before the
            // request timeout can only have hit the connect timeout.
            curl_off_t connected = 0;
            curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected);
            if (connected == 0 && t.request.connect_timeout < t.request.timeout &&
                SteadyClock::now() - t.started < t.request.timeout)
                return fmt::format("connect timeout after {} ms", t.request.connect_timeout.count());
            return fmt::format("timeout after {} ms", t.request.timeout.count());
        }
        case CURLE_COULDNT_CONNECT: {
            long os_errno = 0;
            curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
            switch (os_errno) {
                case ECONNREFUSED: return fmt::format("connection refused: {}", detail);
                case ENETUNREACH: return fmt::format("network unreachable: {}", detail);
                case EHOSTUNREACH: return fmt::format("host unreachable: {}", detail);
                default: return fmt::format("could not connect: {}", detail);
            }
        }
        case CURLE_COULDNT_RESOLVE_HOST: return fmt::format("could not resolve host: {}", detail);
        case CURLE_PEER_FAILED_VERIFICATION:
            return fmt::format("TLS certificate verification failed: {}", detail);
        case CURLE_SSL_CACERT_BADFILE:
            return fmt::format("TLS CA file could not be read (outbox.ca_file): {}", detail);
        case CURLE_SSL_CONNECT_ERROR: return fmt::format("TLS handshake failed: {}", detail);
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE: return fmt::format("connection error: {}", detail);
        case CURLE_UNSUPPORTED_PROTOCOL:
            // Also what libcurl says of an answer that is no HTTP (HTTP/0.9,
            // a status line it cannot read) once connected.
            if (t.attempted) return fmt::format("invalid response: {}", detail);
            return fmt::format("unsupported URL scheme: {}", detail);
        case CURLE_URL_MALFORMAT: return fmt::format("malformed URL: {}", detail);
        default: return detail;
    }
}

}  // namespace

struct Client::Impl {
    Options options;
    CURLM* multi = nullptr;
    int epoll_fd = -1;
    std::optional<SteadyClock::time_point> deadline;  // libcurl's timer
    std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
    std::vector<CURL*> idle_handles;
    std::vector<Response> completed;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // Also runs when the constructor fails half-way. Transfers in flight
    // are abandoned; their connections are closed.
    ~Impl() {
        for (auto& [easy, t] : active) {
            curl_multi_remove_handle(multi, easy);
            curl_easy_cleanup(easy);
        }
        for (CURL* easy : idle_handles) curl_easy_cleanup(easy);
        if (multi) curl_multi_cleanup(multi);  // may still call on_socket: epoll_fd is open
        if (epoll_fd >= 0) close(epoll_fd);
    }

    // curl keeps a pointer per socket (curl_multi_assign) from the first
    // call for it to its CURL_POLL_REMOVE: set while the socket is in the
    // epoll set, it says ADD or MOD without a failing call first (curl
    // removes a connection's socket after each transfer and adds it back
    // for the next, so that was a failed syscall per request).
    static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) noexcept {
        auto* self = static_cast<Impl*>(userp);
        epoll_event ev{};
        ev.data.fd = s;
        if (what == CURL_POLL_REMOVE) {
            epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, s, nullptr);
            return 0;
        }
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
        if (socketp != nullptr && epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, s, &ev) == 0) return 0;
        if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(self->multi, s, self);
        return 0;
    }

    static int on_timer(CURLM*, long timeout_ms, void* userp) noexcept {
        auto* self = static_cast<Impl*>(userp);
        if (timeout_ms < 0) self->deadline.reset();
        else self->deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
        return 0;
    }

    void finish(CURL* easy, CURLcode code) {
        auto it = active.find(easy);
        if (it == active.end()) return;
        std::unique_ptr<Transfer> t = std::move(it->second);
        active.erase(it);
        curl_multi_remove_handle(multi, easy);
        Response& r = t->response;
        r.duration = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t->started);
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && t->cut_off && status > 0)) {
            r.status = status;
        } else if (code == CURLE_WRITE_ERROR && t->headers_cut_off) {
            r.status = 0;
            r.error = fmt::format("invalid response: headers over {} bytes", t->options->max_read);
        } else if (!t->refused_reason.empty() && (code == CURLE_ABORTED_BY_CALLBACK || !t->attempted)) {
            // Every address was refused (or the connection to be reused
            // was): no request left. Had another address been tried, its
            // error is the one to report.
            r.status = 0;
            r.refused = true;
            r.error = t->refused_reason;
        } else {
            r.status = 0;
            r.error = describe_error(easy, code, *t);
        }
        completed.push_back(std::move(r));
        // A handle keeps its header buffer across curl_easy_reset(): one
        // that read a header bomb (up to max_read) would hold that much in
        // the pool for good, times max_in_flight. Such handles, and those
        // of failed transfers, are freed instead.
        if (code != CURLE_OK || t->header_bytes > kPooledHeaderBytes) {
            curl_easy_cleanup(easy);
            return;
        }
        curl_easy_reset(easy);
        idle_handles.push_back(easy);
    }

    void drain_messages() {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg == CURLMSG_DONE) finish(msg->easy_handle, msg->data.result);
        }
    }
};

Client::Client(Options options) : impl_(std::make_unique<Impl>()) {
    static const bool global_init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
    if (!global_init) throw std::runtime_error("libcurl initialisation failed");
    impl_->options = std::move(options);
    impl_->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (impl_->epoll_fd < 0) throw std::runtime_error("epoll_create1 failed");
    impl_->multi = curl_multi_init();
    if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETDATA, impl_.get());
    curl_multi_setopt(impl_->multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(impl_->multi, CURLMOPT_TIMERDATA, impl_.get());
    curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, impl_->options.max_connections);
}

Client::~Client() = default;

void Client::set_options(Options options) {
    impl_->options = std::move(options);
    curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, impl_->options.max_connections);
}

void Client::start(Request request) {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->response.tag = t->request.tag;
    // Callbacks read the client's options through this pointer, valid for
    // the client's lifetime; set_options() replaces them in place, so a
    // reload also applies to transfers in flight (e.g. allowed_networks on
    // their next connection).
    t->options = &impl_->options;
    for (const std::string& line : t->request.headers) {
        curl_slist* next = curl_slist_append(t->headers, line.c_str());
        if (!next) throw std::bad_alloc();
        t->headers = next;
    }

    // A handle from the pool (reset when it went back), else a new one.
    // Nothing between taking it and handing it to the active map throws.
    impl_->idle_handles.reserve(impl_->idle_handles.size() + 1);  // room to give it back
    CURL* easy = nullptr;
    if (!impl_->idle_handles.empty()) {
        easy = impl_->idle_handles.back();
        impl_->idle_handles.pop_back();
    } else {
        easy = curl_easy_init();
        if (!easy) throw std::runtime_error("curl_easy_init failed");
    }
    t->easy = easy;

    const Options& o = impl_->options;
    curl_easy_setopt(easy, CURLOPT_URL, t->request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->request.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(t->request.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(t->request.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    // No proxy, not even from http_proxy/https_proxy/all_proxy in the
    // server's environment: the address guard must see the address that
    // is actually connected to, not a proxy that resolves the host itself.
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!o.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, o.ca_file.c_str());
    // Trust the CA file alone (outbox.ca_file, else the bundle libcurl was
    // built with), not also a CA directory (Debian's libcurl adds
    // /etc/ssl/certs): libcurl caches the certificate store in the multi
    // handle only for a CA file. Without the cache every TLS handshake
    // parses the whole bundle, about 25 ms of the worker's loop each, so a
    // peer that fails handshakes fast stalled every other endpoint.
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, o.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &on_prereq);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error_buffer);

    t->started = SteadyClock::now();
    try {
        impl_->active.emplace(easy, std::move(t));
    } catch (...) {
        curl_easy_reset(easy);
        impl_->idle_handles.push_back(easy);  // cannot throw: room reserved above
        throw;
    }
    // libcurl's timer callback asks for a perform() at once; the transfer
    // begins there.
    if (curl_multi_add_handle(impl_->multi, easy) != CURLM_OK) impl_->finish(easy, CURLE_FAILED_INIT);
}

std::size_t Client::in_flight() const noexcept { return impl_->active.size(); }

int Client::fd() const noexcept { return impl_->epoll_fd; }

std::optional<std::chrono::milliseconds> Client::timeout() const {
    if (impl_->active.empty() && impl_->completed.empty()) return std::nullopt;
    if (!impl_->completed.empty()) return std::chrono::milliseconds(0);
    if (!impl_->deadline) return std::nullopt;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*impl_->deadline - SteadyClock::now());
    return std::max(left, std::chrono::milliseconds(0));
}

void Client::perform() {
    epoll_event events[64];
    int running = 0;
    for (;;) {
        int n = epoll_wait(impl_->epoll_fd, events, 64, 0);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            int mask = 0;
            if (events[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(impl_->multi, events[i].data.fd, mask, &running);
        }
        impl_->drain_messages();
        if (n < 64) break;
    }
    if (impl_->deadline && SteadyClock::now() >= *impl_->deadline) {
        impl_->deadline.reset();
        curl_multi_socket_action(impl_->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    impl_->drain_messages();
}

std::vector<Response> Client::take_completed() {
    std::vector<Response> out;
    out.swap(impl_->completed);
    return out;
}

}  // namespace outbox::http
