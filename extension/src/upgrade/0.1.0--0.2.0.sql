-- outbox 0.1.0 -> 0.2.0: how the tables change. The functions, triggers,
-- views and grants of 0.2.0 follow this part (extension/src/*.sql, created
-- or replaced).
\echo Use "ALTER EXTENSION outbox UPDATE" to load this file. \quit

-- Backup and restore (restore.sql): the dumped database's dispatch state.
ALTER TABLE outbox.dispatch_state
    ADD COLUMN restored_at timestamptz,
    ADD COLUMN restored_done_snapshot pg_snapshot,
    ADD COLUMN restored_target_snapshot pg_snapshot,
    ADD COLUMN restored_cursor_txid xid8,
    ADD COLUMN restored_cursor_seq bigint;
