#include "core/budget.hpp"

#include <algorithm>

namespace outbox::core {

void share_workers(std::span<const int> wants, std::span<int> grants, int budget) noexcept {
    std::size_t n = std::min(wants.size(), grants.size());
    int left = budget;
    for (std::size_t i = 0; i < n; i++) {
        grants[i] = 1;
        left--;
    }
    // Rounds of one more each: a database that wants few is soon full, and
    // what it does not take goes to the others.
    bool dealt = true;
    while (left > 0 && dealt) {
        dealt = false;
        for (std::size_t i = 0; i < n && left > 0; i++) {
            if (grants[i] < wants[i]) {
                grants[i]++;
                left--;
                dealt = true;
            }
        }
    }
}

}  // namespace outbox::core
