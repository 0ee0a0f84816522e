// What a Redis server answers to XADD (src/sink/redis.cpp: hiredis' reader
// with our caps on what a reply may take, our reading of the reply).
#include "peer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fuzz::Peer peer;
    peer.run("redis://127.0.0.1:PORT/fuzz.{topic}", fuzz::text(data, size), "XADD");
    return 0;
}
