// The utility hook (the library is preloaded, so every backend has it):
// the commands that concern the workers, told to the launcher.
//
// - A command that needs a database free of other sessions (DROP
//   DATABASE, ALTER DATABASE ... RENAME or SET TABLESPACE, CREATE DATABASE
//   ... TEMPLATE of it) holds that database before it runs: the launcher
//   stops its workers and the command waits until they have exited. The
//   hold ends with the command's transaction, committed or not; the
//   launcher then serves the database again if it still may.
// - CREATE / ALTER / DROP EXTENSION outbox, CREATE DATABASE, ALTER
//   DATABASE (options, RENAME, SET) and ALTER ROLE ALL ... SET are told at
//   commit (a transaction callback, as enqueue's wake-up is): one rolled
//   back changes nothing.
// - CREATE EXTENSION outbox in a database the workers do not serve says so.
// - COMMIT PREPARED wakes a worker of its database, as COMMIT does.
//
// Plain PostgreSQL code, no C++ objects: errors propagate as they would
// from the command itself.
#include "pg/utility_hook.hpp"

#include "pg/gucs.hpp"
#include "pg/launcher_requests.hpp"
#include "pg/shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_database.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/syscache.h"
}

namespace outbox::pg {

namespace {

// Long enough for workers to finish a round and hand back their claims;
// past it the command runs anyway and PostgreSQL says who is in the way.
constexpr int kHoldTimeoutMs = 15000;

ProcessUtility_hook_type prev_process_utility = nullptr;

// What to tell the launcher when the transaction commits.
bool rescan_at_commit = false;  // pg_database changes
constexpr int kMaxPendingRechecks = 8;
Oid recheck_at_commit[kMaxPendingRechecks];  // the extension or the settings of these databases change
int n_recheck_at_commit = 0;
bool recheck_all_at_commit = false;

void recheck_at_commit_of(Oid database) {
    if (!OidIsValid(database)) return;
    for (int i = 0; i < n_recheck_at_commit; i++)
        if (recheck_at_commit[i] == database) return;
    if (n_recheck_at_commit < kMaxPendingRechecks) recheck_at_commit[n_recheck_at_commit++] = database;
    else recheck_all_at_commit = true;
}

bool has_option(List* options, const char* name, char** value) {
    ListCell* cell;
    foreach (cell, options) {
        DefElem* option = static_cast<DefElem*>(lfirst(cell));
        if (strcmp(option->defname, name) != 0) continue;
        if (value != nullptr) *value = option->arg != nullptr ? defGetString(option) : nullptr;
        return true;
    }
    return false;
}

bool names_outbox(List* objects) {
    ListCell* cell;
    foreach (cell, objects)
        if (strcmp(strVal(lfirst(cell)), "outbox") == 0) return true;
    return false;
}

// The database a command must find free of sessions (InvalidOid: none),
// and what to tell the launcher at commit.
Oid examine(Node* tree) {
    switch (nodeTag(tree)) {
        case T_DropdbStmt:
            // (In a transaction block it fails at once: nothing to hold.)
            return IsTransactionBlock() ? InvalidOid : get_database_oid(castNode(DropdbStmt, tree)->dbname, true);
        case T_RenameStmt: {
            RenameStmt* stmt = castNode(RenameStmt, tree);
            if (stmt->renameType != OBJECT_DATABASE) return InvalidOid;
            rescan_at_commit = true;
            return get_database_oid(stmt->subname, true);
        }
        case T_AlterDatabaseStmt: {
            AlterDatabaseStmt* stmt = castNode(AlterDatabaseStmt, tree);
            rescan_at_commit = true;  // ALLOW_CONNECTIONS, IS_TEMPLATE
            return has_option(stmt->options, "tablespace", nullptr) && !IsTransactionBlock()
                       ? get_database_oid(stmt->dbname, true)
                       : InvalidOid;
        }
        case T_CreatedbStmt: {
            char* source = nullptr;
            rescan_at_commit = true;
            return has_option(castNode(CreatedbStmt, tree)->options, "template", &source) && source != nullptr &&
                           !IsTransactionBlock()
                       ? get_database_oid(source, true)
                       : InvalidOid;
        }
        case T_AlterDatabaseSetStmt:
            recheck_at_commit_of(get_database_oid(castNode(AlterDatabaseSetStmt, tree)->dbname, true));
            return InvalidOid;
        case T_AlterRoleSetStmt: {
            // ALTER ROLE ALL [IN DATABASE ...] SET: settings of every role.
            AlterRoleSetStmt* stmt = castNode(AlterRoleSetStmt, tree);
            if (stmt->role != nullptr) return InvalidOid;
            if (stmt->database == nullptr) recheck_all_at_commit = true;
            else recheck_at_commit_of(get_database_oid(stmt->database, true));
            return InvalidOid;
        }
        case T_CreateExtensionStmt:
            if (strcmp(castNode(CreateExtensionStmt, tree)->extname, "outbox") == 0) recheck_at_commit_of(MyDatabaseId);
            return InvalidOid;
        case T_AlterExtensionStmt:
            if (strcmp(castNode(AlterExtensionStmt, tree)->extname, "outbox") == 0) recheck_at_commit_of(MyDatabaseId);
            return InvalidOid;
        case T_DropStmt: {
            DropStmt* stmt = castNode(DropStmt, tree);
            if (stmt->removeType == OBJECT_EXTENSION && names_outbox(stmt->objects)) recheck_at_commit_of(MyDatabaseId);
            return InvalidOid;
        }
        default:
            return InvalidOid;
    }
}

// After CREATE EXTENSION outbox: a WARNING when this database is not served.
void warn_if_not_served() {
    HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
    if (!HeapTupleIsValid(tuple)) return;
    Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
    bool enterable = db->datallowconn && !db->datistemplate;
    NameData name = db->datname;
    ReleaseSysCache(tuple);
    if (!enterable) {
        ereport(WARNING,
                (errmsg("database \"%s\" is a template or does not allow connections: outbox workers never enter "
                        "it, so its events are stored but not delivered", NameStr(name)),
                 errhint("Databases made from it with CREATE DATABASE ... TEMPLATE are served.")));
        return;
    }
    List* names = served_database_names();
    if (names == NIL) return;  // every database with the extension
    ListCell* cell;
    foreach (cell, names)
        if (strcmp(static_cast<const char*>(lfirst(cell)), NameStr(name)) == 0) return;
    ereport(WARNING,
            (errmsg("outbox.database does not name database \"%s\": its events are stored but not delivered",
                    NameStr(name)),
             errdetail("outbox.database is \"%s\".", guc_database),
             errhint("Add the database to outbox.database, or set it to '' to serve every database that has the "
                     "extension, and restart the server.")));
}

void process_utility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
    Node* tree = pstmt->utilityStmt;
    bool creating_extension =
        IsA(tree, CreateExtensionStmt) && strcmp(castNode(CreateExtensionStmt, tree)->extname, "outbox") == 0;
    Oid held = examine(tree);
    if (OidIsValid(held)) (void)hold_database(held, kHoldTimeoutMs);
    if (prev_process_utility != nullptr)
        prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    if (creating_extension) warn_if_not_served();
    // What a prepared transaction did was not told at its PREPARE: its
    // events (a worker of this database looks at once) and its DDL.
    if (IsA(tree, TransactionStmt) && castNode(TransactionStmt, tree)->kind == TRANS_STMT_COMMIT_PREPARED) {
        wake_a_worker();
        recheck_all_at_commit = true;
        rescan_at_commit = true;
    }
}

}  // namespace

void install_utility_hook() {
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
}

void utility_transaction_end(bool committed) {
    if (committed) {
        for (int i = 0; i < n_recheck_at_commit; i++) request_recheck(recheck_at_commit[i]);
        if (recheck_all_at_commit) request_recheck_all();
        if (rescan_at_commit) request_rescan();
    }
    n_recheck_at_commit = 0;
    recheck_all_at_commit = rescan_at_commit = false;
    release_holds();
}

}  // namespace outbox::pg
