#include "core/budget.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace outbox::core;

namespace {

std::vector<int> share(std::vector<int> wants, int budget) {
    std::vector<int> grants(wants.size(), -1);
    share_workers(wants, grants, budget);
    return grants;
}

}  // namespace

TEST(Budget, EnoughForAllGivesEachWhatItWants) {
    EXPECT_EQ(share({2, 3, 1}, 8), (std::vector<int>{2, 3, 1}));
    EXPECT_EQ(share({2}, 2), (std::vector<int>{2}));
}

TEST(Budget, EveryDatabaseGetsOneEvenBeyondTheBudget) {
    EXPECT_EQ(share({2, 2, 2}, 2), (std::vector<int>{1, 1, 1})) << "three databases, a budget of two";
    EXPECT_EQ(share({4}, 0), (std::vector<int>{1}));
    EXPECT_EQ(share({0, -3}, 8), (std::vector<int>{1, 1})) << "a want below one counts as one";
}

TEST(Budget, AShortBudgetIsSharedEvenly) {
    EXPECT_EQ(share({4, 4, 4}, 7), (std::vector<int>{3, 2, 2}));
    EXPECT_EQ(share({8, 8}, 8), (std::vector<int>{4, 4}));
}

TEST(Budget, WhatASmallWantLeavesGoesToTheOthers) {
    EXPECT_EQ(share({1, 8, 8}, 8), (std::vector<int>{1, 4, 3}));
    EXPECT_EQ(share({1, 2, 10}, 8), (std::vector<int>{1, 2, 5}));
}

TEST(Budget, NoDatabasesNothingToShare) { EXPECT_EQ(share({}, 8), (std::vector<int>{})); }
