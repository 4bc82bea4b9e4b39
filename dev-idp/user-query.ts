import { z } from 'zod';
import { invalidArgument } from './errors.js';

/** zitadel.object.v2.TextQueryMethod, by name or by proto enum number. */
const TEXT_METHODS = [
  'TEXT_QUERY_METHOD_EQUALS',
  'TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE',
  'TEXT_QUERY_METHOD_STARTS_WITH',
  'TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE',
  'TEXT_QUERY_METHOD_CONTAINS',
  'TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE',
  'TEXT_QUERY_METHOD_ENDS_WITH',
  'TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE',
] as const;
export type TextMethod = (typeof TEXT_METHODS)[number];

export const textMethod = z
  .union([z.enum(TEXT_METHODS), z.number().int().min(0).max(7)])
  .optional()
  .transform((value): TextMethod =>
    typeof value === 'number' ? TEXT_METHODS[value] : (value ?? TEXT_METHODS[0]),
  );

/** zitadel.user.v2.UserState; proto enum numbers are accepted too. */
const USER_STATES = [
  'USER_STATE_UNSPECIFIED',
  'USER_STATE_ACTIVE',
  'USER_STATE_INACTIVE',
  'USER_STATE_DELETED',
  'USER_STATE_LOCKED',
  'USER_STATE_INITIAL',
] as const;
const userState = z
  .union([z.enum(USER_STATES), z.number().int().min(0).max(5)])
  .transform((value) => (typeof value === 'number' ? USER_STATES[value] : value));

const text = z.string().max(200);

/** A uint64 arrives as a JSON string from grpc-gateway clients, as a number from hand-written ones. */
export const uint64 = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+$/, 'must be an unsigned integer')])
  .transform(Number);

export interface SearchQuery {
  userNameQuery?: { userName: string; method: TextMethod };
  emailQuery?: { emailAddress: string; method: TextMethod };
  displayNameQuery?: { displayName: string; method: TextMethod };
  firstNameQuery?: { firstName: string; method: TextMethod };
  lastNameQuery?: { lastName: string; method: TextMethod };
  nickNameQuery?: { nickName: string; method: TextMethod };
  loginNameQuery?: { loginName: string; method: TextMethod };
  stateQuery?: { state: (typeof USER_STATES)[number] };
  typeQuery?: { type: 'TYPE_UNSPECIFIED' | 'TYPE_HUMAN' | 'TYPE_MACHINE' };
  inUserIdsQuery?: { userIds: string[] };
  organizationIdQuery?: { organizationId: string };
  orQuery?: { queries: SearchQuery[] };
  andQuery?: { queries: SearchQuery[] };
  notQuery?: { query: SearchQuery };
}

const searchQuery: z.ZodType<SearchQuery, unknown> = z.lazy(() =>
  z
    .object({
      userNameQuery: z.object({ userName: text, method: textMethod }).optional(),
      emailQuery: z.object({ emailAddress: text, method: textMethod }).optional(),
      displayNameQuery: z.object({ displayName: text, method: textMethod }).optional(),
      firstNameQuery: z.object({ firstName: text, method: textMethod }).optional(),
      lastNameQuery: z.object({ lastName: text, method: textMethod }).optional(),
      nickNameQuery: z.object({ nickName: text, method: textMethod }).optional(),
      loginNameQuery: z.object({ loginName: text, method: textMethod }).optional(),
      stateQuery: z.object({ state: userState }).optional(),
      typeQuery: z
        .object({
          type: z
            .union([
              z.enum(['TYPE_UNSPECIFIED', 'TYPE_HUMAN', 'TYPE_MACHINE']),
              z.number().int().min(0).max(2),
            ])
            .transform((v) =>
              typeof v === 'number' ? (['TYPE_UNSPECIFIED', 'TYPE_HUMAN', 'TYPE_MACHINE'] as const)[v] : v,
            ),
        })
        .optional(),
      inUserIdsQuery: z.object({ userIds: z.array(z.string().max(200)).max(1000) }).optional(),
      organizationIdQuery: z.object({ organizationId: z.string().max(200) }).optional(),
      orQuery: z.object({ queries: z.array(searchQuery).max(100) }).optional(),
      andQuery: z.object({ queries: z.array(searchQuery).max(100) }).optional(),
      notQuery: z.object({ query: searchQuery }).optional(),
    })
    .refine((query) => Object.values(query).filter((v) => v !== undefined).length === 1, {
      message: 'each query must set exactly one supported query kind',
    }),
);

const SORTING_COLUMNS = {
  USER_FIELD_NAME_UNSPECIFIED: 'u.created_at',
  USER_FIELD_NAME_USER_NAME: 'u.username',
  USER_FIELD_NAME_FIRST_NAME: 'u.given_name',
  USER_FIELD_NAME_LAST_NAME: 'u.family_name',
  USER_FIELD_NAME_NICK_NAME: 'u.nick_name',
  USER_FIELD_NAME_DISPLAY_NAME: 'u.display_name',
  USER_FIELD_NAME_EMAIL: 'u.email',
  USER_FIELD_NAME_STATE: 'u.state',
  USER_FIELD_NAME_TYPE: 'u.created_at',
  USER_FIELD_NAME_CREATION_DATE: 'u.created_at',
} as const;
const SORTING_NAMES = Object.keys(SORTING_COLUMNS) as Array<keyof typeof SORTING_COLUMNS>;

/** zitadel.user.v2.ListUsersRequest */
export const listUsersRequest = z.object({
  query: z
    .object({
      offset: uint64.optional(),
      limit: uint64.optional(),
      asc: z.boolean().optional(),
    })
    .optional(),
  sortingColumn: z
    .union([z.enum(SORTING_NAMES as [keyof typeof SORTING_COLUMNS]), z.number().int().min(0).max(9)])
    .optional()
    .transform((v) => (typeof v === 'number' ? SORTING_NAMES[v] : (v ?? 'USER_FIELD_NAME_UNSPECIFIED'))),
  queries: z.array(searchQuery).max(100).optional(),
});
export type ListUsersRequest = z.output<typeof listUsersRequest>;

const MAX_DEPTH = 10;
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Collects positional parameters while a WHERE clause is assembled. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function textCondition(column: string, value: string, method: TextMethod, params: Params): string {
  const ignoreCase = method.endsWith('_IGNORE_CASE');
  const col = ignoreCase ? `lower(${column})` : column;
  const wrap = (p: string) => (ignoreCase ? `lower(${p})` : p);
  switch (method) {
    case 'TEXT_QUERY_METHOD_EQUALS':
    case 'TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE':
      return `${col} = ${wrap(params.add(value))}`;
    case 'TEXT_QUERY_METHOD_STARTS_WITH':
    case 'TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE':
      return `${col} LIKE ${wrap(params.add(`${escapeLike(value)}%`))} ESCAPE '\\'`;
    case 'TEXT_QUERY_METHOD_CONTAINS':
    case 'TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE':
      return `${col} LIKE ${wrap(params.add(`%${escapeLike(value)}%`))} ESCAPE '\\'`;
    case 'TEXT_QUERY_METHOD_ENDS_WITH':
    case 'TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE':
      return `${col} LIKE ${wrap(params.add(`%${escapeLike(value)}`))} ESCAPE '\\'`;
  }
}

function condition(query: SearchQuery, params: Params, depth: number): string {
  if (depth > MAX_DEPTH)
    throw invalidArgument('DEVIDP-VALID', `queries nest deeper than ${MAX_DEPTH} levels`);
  const all = (queries: SearchQuery[], joiner: string, empty: string) =>
    queries.length === 0 ? empty : `(${queries.map((q) => condition(q, params, depth + 1)).join(joiner)})`;
  if (query.userNameQuery)
    return textCondition('u.username', query.userNameQuery.userName, query.userNameQuery.method, params);
  if (query.loginNameQuery)
    return textCondition('u.username', query.loginNameQuery.loginName, query.loginNameQuery.method, params);
  if (query.emailQuery)
    return textCondition('u.email', query.emailQuery.emailAddress, query.emailQuery.method, params);
  if (query.displayNameQuery)
    return textCondition(
      'u.display_name',
      query.displayNameQuery.displayName,
      query.displayNameQuery.method,
      params,
    );
  if (query.firstNameQuery)
    return textCondition('u.given_name', query.firstNameQuery.firstName, query.firstNameQuery.method, params);
  if (query.lastNameQuery)
    return textCondition('u.family_name', query.lastNameQuery.lastName, query.lastNameQuery.method, params);
  if (query.nickNameQuery)
    return textCondition('u.nick_name', query.nickNameQuery.nickName, query.nickNameQuery.method, params);
  if (query.stateQuery) return `u.state = ${params.add(query.stateQuery.state)}`;
  // Every user here is human: a machine-type query matches nothing.
  if (query.typeQuery) return query.typeQuery.type === 'TYPE_MACHINE' ? 'FALSE' : 'TRUE';
  if (query.inUserIdsQuery) return `u.id = ANY(${params.add(query.inUserIdsQuery.userIds)}::text[])`;
  if (query.organizationIdQuery) return `u.org_id = ${params.add(query.organizationIdQuery.organizationId)}`;
  if (query.orQuery) return all(query.orQuery.queries, ' OR ', 'FALSE');
  if (query.andQuery) return all(query.andQuery.queries, ' AND ', 'TRUE');
  if (query.notQuery) return `NOT (${condition(query.notQuery.query, params, depth + 1)})`;
  return 'TRUE';
}

/** Top-level queries are AND-ed, as in Zitadel. Every value is a bound parameter. */
export function buildUserSearch(request: ListUsersRequest): {
  sql: string;
  values: unknown[];
  countSql: string;
  countValues: unknown[];
} {
  const params = new Params();
  const where = (request.queries ?? []).map((q) => condition(q, params, 1));
  const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const countSql = `SELECT count(*)::text AS total FROM dev_idp.users u ${whereSql}`;
  const countValues = [...params.values];
  const direction = request.query?.asc ? 'ASC' : 'DESC';
  const column = SORTING_COLUMNS[request.sortingColumn];
  const limit = Math.min(request.query?.limit || DEFAULT_LIMIT, MAX_LIMIT);
  const offset = request.query?.offset ?? 0;
  const sql =
    `SELECT u.* FROM dev_idp.users u ${whereSql} ORDER BY ${column} ${direction}, u.id ${direction} ` +
    `LIMIT ${params.add(limit)} OFFSET ${params.add(offset)}`;
  return { sql, values: params.values, countSql, countValues };
}
