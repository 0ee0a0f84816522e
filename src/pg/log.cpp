#include "pg/log.hpp"

#include "pg/guard.hpp"

namespace outbox::pg {

void log_message(int elevel, const std::string& message, const std::string& detail, const std::string& hint) {
    pg_call([&] {
        ereport(elevel, (errmsg_internal("%s", message.c_str()),
                         detail.empty() ? 0 : errdetail_internal("%s", detail.c_str()),
                         hint.empty() ? 0 : errhint("%s", hint.c_str())));
    });
}

}  // namespace outbox::pg
