// What an AMQP 0-9-1 broker sends, from connection.start to the publisher
// confirm (src/sink/amqp.cpp: rabbitmq-c's decoding, our reading of acks,
// nacks, returns, blocked and close). The second part is sent once the
// client has published (a basic.publish frame: class 60, method 40).
#include "peer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fuzz::Peer peer;
    peer.run("amqp://127.0.0.1:PORT/%2F?routing_key={topic}", fuzz::text(data, size),
             std::string_view("\x00\x3c\x00\x28", 4));
    return 0;
}
