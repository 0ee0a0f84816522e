// What a NATS server sends, from INFO to the PubAck (src/sink/nats.cpp,
// nats_connection.cpp: libnats in event-loop mode, read by the sink with
// its cap, the PubAck's outcome). "$R" and "$S" in the second part address
// the PubAck; PINGs are answered (peer.hpp).
#include "peer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fuzz::Peer peer;
    peer.run("nats://127.0.0.1:PORT/fuzz.{topic}", fuzz::text(data, size), "PUB ", /*pong=*/true);
    return 0;
}
