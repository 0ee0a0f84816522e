// Errors raised by the pure core. The PostgreSQL side maps `Kind` to a
// SQLSTATE and turns message/detail/hint into an ereport(); nothing here knows
// about PostgreSQL.
#pragma once

#include <stdexcept>
#include <string>

namespace outbox::core {

class InvalidInput : public std::runtime_error {
public:
    enum class Kind {
        InvalidValue,   // -> 22023 invalid_parameter_value
        NullValue,      // -> 22004 null_value_not_allowed
        TooLarge,       // -> 54000 program_limit_exceeded
        Reserved,       // -> 42939 reserved_name
        NotSupported,   // -> 0A000 feature_not_supported
    };

    InvalidInput(Kind kind, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(message), kind_(kind), detail_(std::move(detail)), hint_(std::move(hint)) {}

    Kind kind() const noexcept { return kind_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    Kind kind_;
    std::string detail_;
    std::string hint_;
};

}  // namespace outbox::core
