#include "uuid.hpp"

#include <openssl/rand.h>
#include <pthread.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace outbox::core {

namespace {

// Random bytes drawn from OpenSSL in blocks. One RAND_bytes call costs about
// 4 us (it locks its generator and asks the kernel for the pid, to notice a
// fork): as much as the rest of an enqueue. A block serves 400 ids.
//
// A forked child must never hand out the bytes its parent also holds (two
// processes would make the same ids), so a fork empties the child's pool.
class RandomPool {
public:
    void take(std::uint8_t* out, size_t n) {
        if (size_t(end_ - next_) < n) refill();
        std::memcpy(out, next_, n);
        std::memset(next_, 0, n);  // a byte is handed out once, then forgotten
        next_ += n;
    }
    void empty() { next_ = end_ = block_; }

private:
    void refill() {
        if (RAND_bytes(block_, sizeof(block_)) != 1) throw std::runtime_error("could not generate random bytes");
        next_ = block_;
        end_ = block_ + sizeof(block_);
    }
    std::uint8_t block_[4000];
    std::uint8_t* next_ = block_;
    std::uint8_t* end_ = block_;
};

thread_local RandomPool pool;
std::once_flag fork_handler;

}  // namespace

Uuid uuid_v7(std::chrono::system_clock::time_point now) {
    std::call_once(fork_handler, [] { pthread_atfork(nullptr, nullptr, [] { pool.empty(); }); });
    Uuid id{};
    pool.take(id.data() + 6, id.size() - 6);

    // 48 bits of Unix milliseconds, big-endian; times before 1970 (a broken
    // clock) become 0 rather than wrapping around.
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    auto unix_ms = static_cast<std::uint64_t>(std::max<decltype(ms)>(ms, 0));
    for (int i = 0; i < 6; i++) id[i] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - i)));

    id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0F));  // version 7
    id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3F));  // variant 10 (RFC 9562)
    return id;
}

std::string uuid_to_string(const Uuid& id) {
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                       "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                       id[12], id[13], id[14], id[15]);
}

}  // namespace outbox::core
