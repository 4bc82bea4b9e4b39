import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  DetailsSchema,
  ListDetailsSchema,
  TextQueryMethod,
} from '@zitadel/proto/zitadel/object/v2/object_pb.js';
import type { QueryResultRow } from 'pg';
import { invalidRequest } from './errors.js';
import type { Queryable, Versioned } from './store.js';

/** What the service implementations share: Zitadel's object v2 details, paging, text queries, validation. */

/** zitadel.object.v2.Details of a row: its sequence, dates and the organization owning it. */
export function details(row: Versioned, resourceOwner: string) {
  return create(DetailsSchema, {
    sequence: BigInt(row.sequence),
    changeDate: timestampFromDate(row.changed_at),
    creationDate: timestampFromDate(row.created_at),
    resourceOwner,
  });
}

export function listDetails(total: number | string) {
  return create(ListDetailsSchema, { totalResult: BigInt(total), timestamp: timestampFromDate(new Date()) });
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/**
 * One page of a List* query and the count of every row it matches, as each List* method answers: a
 * ListQuery (or v2beta PaginationRequest) with limit 100 by default, at most 1000, descending by default;
 * the `where` conditions (their values added to `params`) are AND-ed, `order` columns take the direction.
 */
export async function listPage<T extends QueryResultRow>(
  db: Queryable,
  query: { offset: bigint; limit: number; asc: boolean } | undefined,
  sql: { select: string; from: string; where?: (params: Params) => string[]; order: string[] },
): Promise<{ rows: T[]; total: string; limit: number }> {
  const params = new Params();
  const where = sql.where?.(params) ?? [];
  const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const countValues = [...params.values];
  const limit = Math.min(query?.limit || DEFAULT_LIMIT, MAX_LIMIT);
  const direction = query?.asc ? 'ASC' : 'DESC';
  const [list, count] = await Promise.all([
    db.query<T>(
      `SELECT ${sql.select} FROM ${sql.from} ${whereSql}
       ORDER BY ${sql.order.map((column) => `${column} ${direction}`).join(', ')}
       LIMIT ${params.add(limit)} OFFSET ${params.add(Number(query?.offset ?? 0n))}`,
      params.values,
    ),
    db.query<{ total: string }>(`SELECT count(*)::text AS total FROM ${sql.from} ${whereSql}`, countValues),
  ]);
  return { rows: list.rows, total: count.rows[0]?.total ?? '0', limit };
}

/** Collects positional parameters while a WHERE clause is assembled. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** A text query (object v2 TextQueryMethod, or filter v2beta TextFilterMethod: the same numbers) on a column. */
export function textCondition(column: string, value: string, method: number, params: Params): string {
  const ignoreCase = method % 2 === 1;
  const col = ignoreCase ? `lower(${column})` : column;
  const escaped = value.replace(/[\\%_]/g, (c) => `\\${c}`);
  const like = (pattern: string) => `${col} LIKE ${wrap(params.add(pattern), ignoreCase)} ESCAPE '\\'`;
  switch (method as TextQueryMethod) {
    case TextQueryMethod.STARTS_WITH:
    case TextQueryMethod.STARTS_WITH_IGNORE_CASE:
      return like(`${escaped}%`);
    case TextQueryMethod.CONTAINS:
    case TextQueryMethod.CONTAINS_IGNORE_CASE:
      return like(`%${escaped}%`);
    case TextQueryMethod.ENDS_WITH:
    case TextQueryMethod.ENDS_WITH_IGNORE_CASE:
      return like(`%${escaped}`);
    case TextQueryMethod.EQUALS:
    case TextQueryMethod.EQUALS_IGNORE_CASE:
    default:
      return `${col} = ${wrap(params.add(value), ignoreCase)}`;
  }
}

function wrap(param: string, ignoreCase: boolean): string {
  return ignoreCase ? `lower(${param})` : param;
}

/**
 * The proto validation rules Zitadel declares on the fields dev-idp reads (min/max length, formats), which
 * refuse a request with InvalidArgument before it reaches a command. Returns the trimmed value.
 */
export function text(
  what: string,
  field: string,
  value: string,
  rule: { min?: number; max?: number; pattern?: RegExp; trim?: boolean } = {},
): string {
  const v = rule.trim === false ? value : value.trim();
  const max = rule.max ?? 200;
  if (v.length < (rule.min ?? 1))
    throw invalidRequest(what, field, `must have at least ${rule.min ?? 1} character(s)`);
  if (v.length > max) throw invalidRequest(what, field, `must have at most ${max} characters`);
  if (rule.pattern && !rule.pattern.test(v)) throw invalidRequest(what, field, 'has an invalid format');
  return v;
}

export const EMAIL = /^[^\s@]+@[^\s@]+$/;
