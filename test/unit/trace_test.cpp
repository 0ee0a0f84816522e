#include "core/trace.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

using outbox::core::InvalidInput;
using outbox::core::validate_traceparent;
using outbox::core::validate_tracestate;

TEST(TraceContext, ValidTraceparents) {
    EXPECT_NO_THROW(validate_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    EXPECT_NO_THROW(validate_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    EXPECT_NO_THROW(validate_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

TEST(TraceContext, MalformedTraceparents) {
    for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  // upper case
                            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
                            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y"}) {
        try {
            validate_traceparent(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const InvalidInput& e) {
            EXPECT_FALSE(e.hint().empty());
        }
    }
}

TEST(TraceContext, Tracestate) {
    EXPECT_NO_THROW(validate_tracestate("congo=t61rcWkgMzE"));
    EXPECT_NO_THROW(validate_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"));
    EXPECT_NO_THROW(validate_tracestate("vendor@tenant=x"));
    EXPECT_THROW(validate_tracestate("novalue"), InvalidInput);
    EXPECT_THROW(validate_tracestate("Upper=x"), InvalidInput);
    EXPECT_THROW(validate_tracestate("a=b\nc=d"), InvalidInput);
    std::string many;
    for (int i = 0; i < 33; i++) many += "k" + std::to_string(i) + "=v,";
    EXPECT_THROW(validate_tracestate(many), InvalidInput);
    EXPECT_THROW(validate_tracestate(std::string(513, 'a')), InvalidInput);
}
