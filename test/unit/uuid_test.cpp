#include "core/uuid.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>

using outbox::core::Uuid;
using outbox::core::uuid_to_string;
using outbox::core::uuid_v7;

namespace {

// 2023-07-04 12:34:56.789 UTC, as Unix milliseconds: 0x018920E61495.
constexpr std::chrono::milliseconds kTime{1688474096789};

}  // namespace

TEST(UuidV7, VersionAndVariant) {
    for (int i = 0; i < 100; i++) {
        Uuid id = uuid_v7();
        EXPECT_EQ(id[6] >> 4, 7);
        EXPECT_EQ(id[8] >> 6, 0b10);
    }
}

TEST(UuidV7, TimestampIsBigEndianMilliseconds) {
    Uuid id = uuid_v7(std::chrono::system_clock::time_point(kTime));
    EXPECT_EQ(id[0], 0x01);
    EXPECT_EQ(id[1], 0x89);
    EXPECT_EQ(id[2], 0x20);
    EXPECT_EQ(id[3], 0xe6);
    EXPECT_EQ(id[4], 0x14);
    EXPECT_EQ(id[5], 0x95);
    EXPECT_EQ(uuid_to_string(id).substr(0, 15), "018920e6-1495-7");
}

TEST(UuidV7, SubMillisecondsAreIgnoredAndBeforeEpochIsZero) {
    Uuid id = uuid_v7(std::chrono::system_clock::time_point(kTime) + std::chrono::microseconds(999));
    EXPECT_EQ(uuid_to_string(id).substr(0, 13), "018920e6-1495");
    Uuid early = uuid_v7(std::chrono::system_clock::time_point(std::chrono::milliseconds(-5)));
    EXPECT_EQ(uuid_to_string(early).substr(0, 13), "00000000-0000");
}

TEST(UuidV7, TextForm) {
    Uuid id{0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b, 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80, 0x57};
    EXPECT_EQ(uuid_to_string(id), "01890a5d-ac96-774b-bcce-b302099a8057");
    const std::regex canonical("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    std::string text = uuid_to_string(uuid_v7());
    EXPECT_EQ(text.size(), 36u);
    EXPECT_TRUE(std::regex_match(text, canonical)) << text;
}

TEST(UuidV7, ThousandIdsInOneMillisecondAreUnique) {
    std::set<Uuid> ids;
    const auto now = std::chrono::system_clock::time_point(kTime);
    for (int i = 0; i < 1000; i++) ids.insert(uuid_v7(now));
    EXPECT_EQ(ids.size(), 1000u);
}

// Random bytes are drawn in blocks. A forked child (every PostgreSQL backend
// is one) must not hand out the rest of its parent's block: parent and child
// would then make the same ids.
TEST(UuidV7, ForkedChildDoesNotRepeatTheParentsIds) {
    const auto now = std::chrono::system_clock::time_point(kTime);
    (void)uuid_v7(now);  // the parent now holds a block
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        Uuid id = uuid_v7(now);
        _exit(write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size()) ? 0 : 1);
    }
    close(fds[1]);
    Uuid from_child{};
    ASSERT_EQ(read(fds[0], from_child.data(), from_child.size()), static_cast<ssize_t>(from_child.size()));
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_EQ(status, 0);
    EXPECT_NE(from_child, uuid_v7(now));
}
