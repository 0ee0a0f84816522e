// A Kafka cluster for the tests: librdkafka's mock cluster (rdkafka_mock.h),
// which speaks the Kafka protocol on loopback ports, with 3 brokers, and
// a librdkafka consumer to read back what the sink produced. It is not
// Apache Kafka: docs/sinks.md says what that means for the tests.
//
//   kafka_mock [BROKERS]
// stdout, first: {"bootstraps":"127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"}
// stdin, one command a line (fields separated by spaces); each answers one JSON line:
//   create TOPIC PARTITIONS REPLICATION     a topic                          {"ok":true}
//   down BROKER_ID | up BROKER_ID           disconnect a broker, refuse its connections / accept again
//   errors API_KEY CODE [CODE...]           the next requests of that kind (0: Produce) fail with these codes
//   topic-error TOPIC CODE                  metadata requests answer this error for the topic (3: unknown)
//   leader TOPIC PARTITION BROKER_ID        moves a partition's leader
//   read TOPIC                              every message of the topic, from the start, one line each:
//     {"partition":0,"offset":0,"key":"k"|null,"value":"...","headers":[["id","..."],...]}
//   and then {"end":true,"count":N}
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string json_string(const char* data, std::size_t size) {
    std::string out = "\"";
    for (std::size_t i = 0; i < size; i++) {
        auto c = static_cast<unsigned char>(data[i]);
        if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += static_cast<char>(c);
    }
    return out + "\"";
}

rd_kafka_conf_t* conf_with(const std::vector<std::pair<const char*, std::string>>& settings) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[512];
    for (auto& [name, value] : settings)
        if (rd_kafka_conf_set(conf, name, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            std::cerr << name << ": " << errstr << "\n";
            std::exit(2);
        }
    return conf;
}

// Reads a whole topic with a consumer of its own (assigned, no group).
void read_topic(const std::string& bootstraps, const std::string& topic) {
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER,
                                  conf_with({{"bootstrap.servers", bootstraps},
                                             {"group.id", "kafka_mock_reader"},
                                             {"enable.partition.eof", "true"},
                                             {"enable.auto.commit", "false"},
                                             {"log_level", "0"}}),
                                  errstr, sizeof errstr);
    if (!rk) {
        std::cout << "{\"error\":" << json_string(errstr, std::strlen(errstr)) << "}\n" << std::flush;
        return;
    }
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    int partitions = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1)
        partitions = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    std::set<int> at_end;
    long count = 0;
    int idle = 0;
    while (static_cast<int>(at_end.size()) < partitions && idle < 100) {
        rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg) {
            idle++;
            continue;
        }
        idle = 0;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end.insert(msg->partition);
        } else if (!msg->err) {
            at_end.erase(msg->partition);
            count++;
            std::ostringstream line;
            line << "{\"partition\":" << msg->partition << ",\"offset\":" << msg->offset << ",\"key\":"
                 << (msg->key ? json_string(static_cast<const char*>(msg->key), msg->key_len) : "null")
                 << ",\"value\":" << json_string(static_cast<const char*>(msg->payload), msg->len) << ",\"headers\":[";
            rd_kafka_headers_t* headers = nullptr;
            if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char* name;
                const void* value;
                std::size_t size;
                for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == 0; i++)
                    line << (i ? "," : "") << "[" << json_string(name, std::strlen(name)) << ","
                         << json_string(static_cast<const char*>(value), size) << "]";
            }
            line << "]}\n";
            std::cout << line.str();
        }
        rd_kafka_message_destroy(msg);
    }
    std::cout << "{\"end\":true,\"count\":" << count << ",\"partitions\":" << partitions << "}\n" << std::flush;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

}  // namespace

int main(int argc, char** argv) {
    int brokers = argc > 1 ? std::atoi(argv[1]) : 3;
    char errstr[512];
    // The mock cluster needs a client instance for its bookkeeping.
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf_with({{"log_level", "0"}}), errstr, sizeof errstr);
    if (!rk) {
        std::cerr << errstr << "\n";
        return 2;
    }
    rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        std::cerr << "could not make the mock cluster\n";
        return 2;
    }
    std::string bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    std::cout << "{\"bootstraps\":\"" << bootstraps << "\"}\n" << std::flush;
    for (std::string text; std::getline(std::cin, text);) {
        std::istringstream line(text);
        std::vector<std::string> f;
        for (std::string w; line >> w;) f.push_back(w);
        if (f.empty()) continue;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (f[0] == "create" && f.size() == 4) {
            err = rd_kafka_mock_topic_create(mc, f[1].c_str(), std::stoi(f[2]), std::stoi(f[3]));
        } else if (f[0] == "down" && f.size() == 2) {
            err = rd_kafka_mock_broker_set_down(mc, std::stoi(f[1]));
        } else if (f[0] == "up" && f.size() == 2) {
            err = rd_kafka_mock_broker_set_up(mc, std::stoi(f[1]));
        } else if (f[0] == "errors" && f.size() >= 3) {
            std::vector<rd_kafka_resp_err_t> codes;
            for (std::size_t i = 2; i < f.size(); i++) codes.push_back(static_cast<rd_kafka_resp_err_t>(std::stoi(f[i])));
            rd_kafka_mock_push_request_errors_array(mc, static_cast<int16_t>(std::stoi(f[1])), codes.size(), codes.data());
        } else if (f[0] == "topic-error" && f.size() == 3) {
            rd_kafka_mock_topic_set_error(mc, f[1].c_str(), static_cast<rd_kafka_resp_err_t>(std::stoi(f[2])));
        } else if (f[0] == "leader" && f.size() == 4) {
            err = rd_kafka_mock_partition_set_leader(mc, f[1].c_str(), std::stoi(f[2]), std::stoi(f[3]));
        } else if (f[0] == "read" && f.size() == 2) {
            read_topic(bootstraps, f[1]);
            continue;
        } else {
            std::cout << "{\"error\":\"bad command\"}\n" << std::flush;
            continue;
        }
        if (err) std::cout << "{\"error\":" << json_string(rd_kafka_err2str(err), std::strlen(rd_kafka_err2str(err))) << "}\n";
        else std::cout << "{\"ok\":true}\n";
        std::cout << std::flush;
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
