import type { Pool, QueryResultRow } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';

/** A statement for `poolQuery`: `name` makes it a prepared statement of each pooled connection. */
export interface PoolStatement {
  /**
   * Set: node-postgres parses the statement once per connection under this name and afterwards sends only
   * the values; PostgreSQL plans the first five executions with their values and then keeps a generic plan
   * if its estimated cost is no higher (plan_cache_mode auto). Unset: parsed and planned on every call.
   */
  name?: string;
  text: string;
  values: unknown[];
}

/**
 * One statement straight through the pool that TypeORM opened (node-postgres), for the hottest reads: it
 * skips TypeORM's query runner (about 35 µs per query, docs/proof.md) and can name a prepared statement,
 * which TypeORM's `query()` cannot. Failures are TypeORM's QueryFailedError, as from any other query, so
 * ProblemFilter maps them alike (a timeout or lost connection to 503).
 */
export async function poolQuery<T extends QueryResultRow>(
  dataSource: DataSource,
  statement: PoolStatement,
): Promise<T[]> {
  try {
    return (await poolOf(dataSource).query<T>(statement)).rows;
  } catch (error) {
    throw new QueryFailedError(statement.text, statement.values, error as Error);
  }
}

/** TypeORM's PostgresDriver keeps its pg.Pool as `master` (no public accessor); undefined until it connects. */
export function openPool(dataSource: DataSource): Pool | undefined {
  return (dataSource.driver as unknown as { master?: Pool }).master;
}

export function poolOf(dataSource: DataSource): Pool {
  const pool = openPool(dataSource);
  if (!pool) throw new Error('The database pool is not open');
  return pool;
}
