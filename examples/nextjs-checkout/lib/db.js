import pg from 'pg';

// Connection settings come from the environment (PGHOST, PGPORT, PGUSER,
// PGDATABASE), as run.sh sets them. One pool per server process.
export const pool = globalThis.shopPool ??= new pg.Pool({ max: 10 });
// An idle client whose server goes away must not crash the app.
pool.on('error', (err) => console.error('idle database client:', err.message));

// Runs fn(client) in one transaction: COMMIT if it returns, ROLLBACK if it
// throws. Everything the order needs happens inside one of these.
export async function transaction(fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
