// Broker URLs: parsing, validation, credential splitting, templates,
// redaction. The sinks themselves are tested against real brokers in
// test/sink/*.test.mjs.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sink/sink.hpp"
#include "sink/url.hpp"

using outbox::core::InvalidInput;
using namespace outbox::sink;
using detail::parse_broker_url;
using detail::Scheme;
using detail::Template;

TEST(BrokerUrl, Schemes) {
    for (const char* url : {"nats://h/s", "TLS://h/s", "amqp://h/", "amqps://h/v", "redis://h/s", "rediss://h/s",
                            "kafka://h/t", "KAFKAS://h/t"})
        EXPECT_TRUE(is_broker_url(url)) << url;
    for (const char* url : {"http://h/", "https://h/", "kafka:/h/t", "nats:/h/s", "", "redis"})
        EXPECT_FALSE(is_broker_url(url)) << url;
}

TEST(BrokerUrl, NatsHostsPortsSubject) {
    auto b = parse_broker_url("nats://127.0.0.1:4223,[::1]:4224,nats.example.com/events.{topic}.{key}");
    EXPECT_EQ(b.scheme, Scheme::Nats);
    ASSERT_EQ(b.hosts.size(), 3u);
    EXPECT_EQ(b.hosts[0].host, "127.0.0.1");
    EXPECT_EQ(b.hosts[0].port, 4223);
    EXPECT_EQ(b.hosts[1].host, "::1");
    EXPECT_EQ(b.hosts[1].port, 4224);
    EXPECT_EQ(b.hosts[2].port, 4222);
    EXPECT_EQ(b.subject.expand("order.created", std::string("42")), "events.order.created.42");
    EXPECT_TRUE(parse_broker_url("tls://h/s").tls());
}

TEST(BrokerUrl, AmqpDefaultsAndParameters) {
    auto b = parse_broker_url("amqp://rabbit");
    EXPECT_EQ(b.hosts[0].port, 5672);
    EXPECT_EQ(b.vhost, "/");
    EXPECT_EQ(b.exchange, "");
    EXPECT_EQ(b.routing_key.expand("order.created", std::nullopt), "order.created");
    b = parse_broker_url("amqps://rabbit/prod%2Feu?exchange=events&routing_key=%7Btopic%7D.%7Bkey%7D");
    EXPECT_EQ(b.hosts[0].port, 5671);
    EXPECT_EQ(b.vhost, "prod/eu");
    EXPECT_EQ(b.exchange, "events");
    EXPECT_EQ(b.routing_key.expand("a.b", std::string("k")), "a.b.k");
    EXPECT_EQ(b.routing_key.expand("a.b", std::nullopt), "a.b.");
    EXPECT_EQ(parse_broker_url("amqp://h/?exchange=x&routing_key=orders").routing_key.expand("t", std::nullopt), "orders");
}

TEST(BrokerUrl, RedisStreamMaxlenDb) {
    auto b = parse_broker_url("redis://127.0.0.1/outbox:{topic}?maxlen=1000&db=2");
    EXPECT_EQ(b.hosts[0].port, 6379);
    EXPECT_EQ(b.stream.expand("orders", std::nullopt), "outbox:orders");
    EXPECT_EQ(b.maxlen, 1000);
    EXPECT_EQ(b.db, 2);
    EXPECT_FALSE(parse_broker_url("redis://h/s").maxlen.has_value());
}

TEST(BrokerUrl, KafkaHostsTopicSasl) {
    auto b = parse_broker_url("kafka://k1:9093,[::1],k3.example.com/outbox.{topic}-{key}");
    EXPECT_EQ(b.scheme, Scheme::Kafka);
    ASSERT_EQ(b.hosts.size(), 3u);
    EXPECT_EQ(b.hosts[0].port, 9093);
    EXPECT_EQ(b.hosts[1].host, "::1");
    EXPECT_EQ(b.hosts[1].port, 9092);
    EXPECT_FALSE(b.tls());
    EXPECT_EQ(b.topic.expand("order.created", std::string("42")), "outbox.order.created-42");
    EXPECT_EQ(parse_broker_url("kafka://h").topic.expand("orders", std::nullopt), "orders");  // default {topic}
    auto s = parse_broker_url("kafkas://h/t?sasl_mechanism=SCRAM-SHA-512");
    EXPECT_TRUE(s.tls());
    EXPECT_EQ(s.sasl_mechanism, "SCRAM-SHA-512");
    EXPECT_TRUE(detail::kafka_topic_ok("a.b_c-9"));
    for (std::string bad : {std::string(), std::string("."), std::string(".."), std::string("a/b"), std::string("a b"),
                            std::string("é"), std::string(250, 't')})
        EXPECT_FALSE(detail::kafka_topic_ok(bad)) << bad;
    for (const char* url : {"kafka://h/a%20b", "kafka://h/a:b", "kafka://h/t?sasl_mechanism=GSSAPI",
                            "kafka://h/t?partition=1", "kafka://h/{unknown}"})
        EXPECT_THROW(parse_broker_url(url), InvalidInput) << url;
    // Credentials go to SASL: split into the secret like the others'.
    auto split = split_credentials("kafkas://app:s%40cret@k1:9093,k2:9093/t");
    EXPECT_EQ(split.url, "kafkas://k1:9093,k2:9093/t");
    EXPECT_EQ(split.credentials.user, "app");
    EXPECT_EQ(split.credentials.password, "s@cret");
}

TEST(BrokerUrl, RefusesBadShapes) {
    for (const char* url : {
             "nats://", "nats:///subject", "nats://h/", "nats://h/a..b", "nats://h/.a", "nats://h/a.", "nats://h/a.*",
             "nats://h/a.>", "nats://h/a b", "nats://h:0/s", "nats://h:65536/s", "nats://h:x/s", "nats://[::1/s",
             "nats://h/s?stream=x", "nats://h/{unknown}", "nats://h/{topic", "nats://h/topic}", "amqp://h1,h2/",
             "amqp://h/?exchange=a&exchange=b", "amqp://h/?queue=q", "redis://h", "redis://h/", "redis://h/s?maxlen=0",
             "redis://h/s?maxlen=-1", "redis://h/s?maxlen=abc", "redis://h/s?db=x", "redis://h/s#f", "redis://h/%zz",
             "redis://h/s\n", "http://h/", "ftp://h/", "nats://h_%/s"}) {
        EXPECT_THROW(parse_broker_url(url), InvalidInput) << url;
    }
    EXPECT_THROW(parse_broker_url("amqp://h/?routing_key=" + std::string(300, 'r')), InvalidInput);
    EXPECT_THROW(parse_broker_url("redis://h/" + std::string(2100, 's')), InvalidInput);
}

TEST(BrokerUrl, ValidateRefusesRedissWithAHint) {
    try {
        validate_broker_url("rediss://user:s3cret@h/s");
        FAIL() << "accepted";
    } catch (const InvalidInput& e) {
        EXPECT_NE(std::string(e.what()).find("rediss://"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
        EXPECT_NE(e.detail().find("hiredis 0.14"), std::string::npos);
        EXPECT_FALSE(e.hint().empty());
    }
    EXPECT_THROW(make_sink("rediss://h/s", {}, {}), InvalidInput);
    EXPECT_NO_THROW(validate_broker_url("redis://user:pw@h/s"));
}

TEST(BrokerUrl, ErrorsNeverShowCredentials) {
    for (const char* url : {"nats://u:s3cret@h/a..b", "amqp://u:s3cret@h1,h2/", "redis://:s3cret@h/",
                            "nats://s3cret@h/{x}", "amqp://u:s3cret%zz@h/", "amqp://u:s3cret@h/?bad=1"}) {
        try {
            validate_broker_url(url);
            ADD_FAILURE() << "accepted " << url;
        } catch (const InvalidInput& e) {
            EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
            EXPECT_EQ(e.detail().find("s3cret"), std::string::npos) << e.detail();
        }
    }
    // make_sink refuses credentials in the URL: they belong in the secret.
    try {
        make_sink("amqp://guest:s3cret@127.0.0.1/", {}, {});
        FAIL() << "accepted";
    } catch (const InvalidInput& e) {
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("***@127.0.0.1"), std::string::npos) << e.what();
    }
}

TEST(BrokerUrl, SplitCredentials) {
    auto s = split_credentials("amqp://us%40er:p%3Ass@rabbit:5672/vh?exchange=x");
    EXPECT_EQ(s.url, "amqp://rabbit:5672/vh?exchange=x");
    EXPECT_EQ(s.credentials.user, "us@er");
    EXPECT_EQ(s.credentials.password, "p:ss");
    EXPECT_TRUE(s.credentials.token.empty());

    s = split_credentials("nats://t0ken@h1:4222,h2:4222/events");
    EXPECT_EQ(s.url, "nats://h1:4222,h2:4222/events");
    EXPECT_EQ(s.credentials.token, "t0ken");
    EXPECT_TRUE(s.credentials.user.empty());

    s = split_credentials("redis://:pw@h/stream");
    EXPECT_EQ(s.url, "redis://h/stream");
    EXPECT_EQ(s.credentials.user, "");
    EXPECT_EQ(s.credentials.password, "pw");

    s = split_credentials("redis://h/a@b");  // '@' in the path is not userinfo
    EXPECT_EQ(s.url, "redis://h/a@b");
    EXPECT_TRUE(s.credentials.empty());

    s = split_credentials("amqp://a:b@c@h/");  // the last '@' of the authority ends the userinfo
    EXPECT_EQ(s.url, "amqp://h/");
    EXPECT_EQ(s.credentials.user, "a");
    EXPECT_EQ(s.credentials.password, "b@c");
    // What is left is what make_sink takes (a build without AMQP refuses the protocol, nothing else).
    try {
        make_sink(split_credentials("amqp://u:p@127.0.0.1/").url, {}, {});
    } catch (const InvalidInput& e) {
        EXPECT_EQ(e.kind(), InvalidInput::Kind::NotSupported) << e.what();
    }
}

TEST(SubjectTemplate, NatsEncoding) {
    auto t = Template::parse("events.{topic}.{key}", Template::Encoding::NatsSubject);
    EXPECT_EQ(t.expand("order.created", std::string("42")), "events.order.created.42");
    // A key is one token: its dots, wildcards and white space are encoded.
    EXPECT_EQ(t.expand("t", std::string("a.b")), "events.t.a%2Eb");
    EXPECT_EQ(t.expand("t", std::string("a b*>")), "events.t.a%20b%2A%3E");
    EXPECT_EQ(t.expand("t", std::string("50%")), "events.t.50%25");
    EXPECT_EQ(t.expand("t", std::string("é")), "events.t.%C3%A9");
    // NULL and empty keys are "_"; a key "_" stays distinct from them.
    EXPECT_EQ(t.expand("t", std::nullopt), "events.t._");
    EXPECT_EQ(t.expand("t", std::string("")), "events.t._");
    EXPECT_EQ(t.expand("t", std::string("_")), "events.t.%5F");
    // The topic's dots stay separators; empty tokens become "_".
    EXPECT_EQ(t.expand("a..b.", std::string("k")), "events.a._.b._.k");
    EXPECT_EQ(t.expand("a b.*", std::string("k")), "events.a%20b.%2A.k");
    EXPECT_TRUE(t.uses("key"));
    EXPECT_FALSE(Template::parse("x.{topic}", Template::Encoding::NatsSubject).uses("key"));
}

TEST(SubjectTemplate, RawAndErrors) {
    auto t = Template::parse("{topic}:{key}", Template::Encoding::Raw);
    EXPECT_EQ(t.expand("a.b c", std::string("k.1")), "a.b c:k.1");
    EXPECT_EQ(t.expand("a", std::nullopt), "a:");
    EXPECT_EQ(Template::parse("plain", Template::Encoding::Raw).expand("t", std::nullopt), "plain");
    for (const char* bad : {"{", "}", "{topic", "{nope}", "a}b", "{{topic}}"})
        EXPECT_THROW(Template::parse(bad, Template::Encoding::Raw), InvalidInput) << bad;
}

// Whether this build has the protocol of `url` (make BROKERS=...);
// BrokerProtocols.BuiltInOrRefused tests the refusal of the others.
static bool built_in(std::string_view url) {
    try {
        require_built_in(url);
        return true;
    } catch (const InvalidInput&) {
        return false;
    }
}

TEST(BrokerSink, MakeSinkDoesNotConnect) {
    if (!built_in("nats://h/s")) GTEST_SKIP() << "built without NATS";
    Options o;
    auto s = make_sink("nats://127.0.0.1:1/s", {}, o);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->in_flight(), 0u);
    EXPECT_FALSE(s->timeout().has_value());
    EXPECT_GE(s->fd(), 0);
}

TEST(BrokerSink, AddressPolicyRefusesBeforeConnecting) {
    // 127.0.0.2 is loopback, outside allowed_networks: refused, no traffic.
    Options o;
    o.allowed_networks = outbox::core::NetworkList::parse("127.0.0.1/32");
    for (const char* url : {"nats://127.0.0.2:4222/s", "amqp://127.0.0.2/", "redis://127.0.0.2/s",
                            "kafka://127.0.0.2:9092,127.0.0.2:9093/t"}) {
        if (!built_in(url)) continue;
        auto s = make_sink(url, {"u", "s3cret", ""}, o);
        Message m;
        m.tag = 7;
        m.event_id = "00000000-0000-0000-0000-000000000001";
        m.topic = "t";
        m.payload = "{}";
        s->start(m);
        EXPECT_EQ(s->timeout(), std::chrono::milliseconds(0)) << url;
        s->perform();
        auto done = s->take_completed();
        ASSERT_EQ(done.size(), 1u) << url;
        EXPECT_EQ(done[0].tag, 7u);
        EXPECT_FALSE(done[0].acked);
        EXPECT_TRUE(done[0].refused) << url << ": " << done[0].error;
        EXPECT_EQ(done[0].status, 0);
        EXPECT_NE(done[0].error.find("127.0.0.2: loopback"), std::string::npos) << done[0].error;
        EXPECT_EQ(done[0].error.find("s3cret"), std::string::npos);
        EXPECT_EQ(s->in_flight(), 0u);
    }
}

TEST(CredentialsSecret, RoundTripsPerScheme) {
    Credentials amqp{"us@er", "p:ss word", ""};
    std::string secret = credentials_secret(amqp);
    EXPECT_EQ(secret, "us%40er:p%3Ass%20word");
    Credentials back = credentials_from_secret("amqp://h/", secret);
    EXPECT_EQ(back.user, "us@er");
    EXPECT_EQ(back.password, "p:ss word");
    EXPECT_TRUE(back.token.empty());

    EXPECT_EQ(credentials_secret(Credentials{"", "", "t0ken"}), "t0ken");
    EXPECT_EQ(credentials_from_secret("nats://h/s", "t0ken").token, "t0ken");
    EXPECT_EQ(credentials_from_secret("amqp://h/", "alice").user, "alice");

    EXPECT_EQ(credentials_secret(Credentials{"", "pw", ""}), ":pw");
    Credentials redis = credentials_from_secret("redis://h/s", ":pw");
    EXPECT_TRUE(redis.user.empty());
    EXPECT_EQ(redis.password, "pw");
    EXPECT_EQ(credentials_secret(Credentials{}), "");

    // What split_credentials takes from a URL becomes the same secret.
    EXPECT_EQ(credentials_secret(split_credentials("amqp://us%40er:p%3Ass%20word@h/").credentials), secret);
}

// Found by test/fuzz/broker_url_fuzz: credentials that fit a URL but whose
// canonical secret (every byte %XX) was longer than the secret's limit were
// stored, and the worker, refusing to read them, stopped for every endpoint.
TEST(CredentialsSecret, WhatSplitAcceptsTheSecretReadsBack) {
    std::string user(kMaxCredentials - 3, '<');
    SplitUrl split = split_credentials("nats://" + user + ":pw@h/s");
    std::string secret = credentials_secret(split.credentials);
    EXPECT_EQ(secret.size(), 3 * user.size() + 3);
    Credentials back = credentials_from_secret(split.url, secret);
    EXPECT_EQ(back.user, user);
    EXPECT_EQ(back.password, "pw");

    EXPECT_THROW(split_credentials("nats://" + user + ":pw12@h/s"), InvalidInput);  // 1025 bytes
    EXPECT_THROW(validate_broker_url("amqp://" + std::string(kMaxCredentials + 1, 'u') + "@h/"), InvalidInput);
    EXPECT_THROW(credentials_from_secret("amqp://h/", std::string(kMaxCredentials + 1, 'u')), InvalidInput);
    EXPECT_THROW(credentials_from_secret("amqp://h/", std::string(3 * kMaxCredentials + 2, 'u')), InvalidInput);
}

// Found by test/fuzz/broker_url_fuzz: a password typed with a '?' ended
// the authority, and the rest was read as an unknown query parameter,
// named (with the password) in the error.
TEST(BrokerUrlCredentials, AQuestionMarkInAPasswordIsRefusedWithoutShowingIt) {
    try {
        validate_broker_url("nats://user:pass?word42@127.0.0.1:4222/events");
        ADD_FAILURE() << "accepted";
    } catch (const InvalidInput& e) {
        EXPECT_EQ(std::string(e.what()).find("word42"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("%3F"), std::string::npos) << e.what();
    }
    // A query without a path still is one.
    EXPECT_EQ(parse_broker_url("amqp://u:p@h?exchange=x").exchange, "x");
    EXPECT_EQ(split_credentials("amqp://u:p@h?exchange=x").url, "amqp://h?exchange=x");
    EXPECT_EQ(split_credentials("amqp://u:p@h?exchange=x").credentials.password, "p");
}

TEST(CredentialsSecret, RefusesWithoutEchoing) {
    for (std::string bad : {"", "a b:c", "user:pa@ss", "us/er:x", "x:%zz"}) {
        try {
            credentials_from_secret("amqp://h/", bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const InvalidInput& e) {
            if (!bad.empty()) { EXPECT_EQ(std::string(e.what()).find(bad), std::string::npos) << e.what(); }
        }
    }
    EXPECT_THROW(credentials_from_secret("https://h/", "a:b"), InvalidInput);
}

// Each protocol is built in or refused (the Makefile's BROKERS): a URL of
// a protocol the build lacks is refused by require_built_in and make_sink
// with Kind::NotSupported, naming the library and its Debian package.
TEST(BrokerProtocols, BuiltInOrRefused) {
    const std::pair<const char*, const char*> urls[] = {
        {"nats", "nats://127.0.0.1/s"}, {"nats", "tls://h.example.com/s"}, {"amqp", "amqp://127.0.0.1/"},
        {"amqp", "amqps://h.example.com/"}, {"redis", "redis://127.0.0.1/s"}, {"kafka", "kafka://127.0.0.1/t"},
        {"kafka", "kafkas://h.example.com/t"}};
    std::string listed;
    for (const Protocol& p : protocols())
        if (p.built_in) listed += std::string(listed.empty() ? "" : ", ") + p.name;
    EXPECT_EQ(built_in_protocols(), listed);
    for (const auto& [name, url] : urls) {
        const Protocol* protocol = nullptr;
        for (const Protocol& p : protocols())
            if (std::string_view(p.name) == name) protocol = &p;
        ASSERT_NE(protocol, nullptr) << name;
        if (protocol->built_in) {
            EXPECT_NO_THROW(require_built_in(url)) << url;
            EXPECT_NE(make_sink(url, {}, {}), nullptr) << url;
            continue;
        }
        for (int through_make_sink = 0; through_make_sink < 2; through_make_sink++) {
            try {
                if (through_make_sink) make_sink(url, {}, {});
                else require_built_in(url);
                ADD_FAILURE() << url << " accepted without its library";
            } catch (const InvalidInput& e) {
                EXPECT_EQ(e.kind(), InvalidInput::Kind::NotSupported) << url;
                EXPECT_NE(std::string(e.what()).find(protocol->library), std::string::npos) << e.what();
                EXPECT_NE(e.hint().find(protocol->package), std::string::npos) << e.hint();
            }
        }
    }
}
