import type { UserSort } from './dto/list-users.dto.js';

/**
 * The SQL of `GET /api/users`, written once per combination of filters instead of by a query builder on
 * every request (a handful of combinations are ever used: a Map holds each one's text). Each page row
 * comes back as the JSON of its UserSummaryDto, written by PostgreSQL (`row_to_json`), so a page of 100
 * users is neither parsed into objects (a Date and a text[] per row) nor serialized again: the controller
 * splices the rows' JSON into the answer. Figures in docs/proof.md.
 */

/** What decides the text of the statements; the values travel as parameters. */
export interface UserListShape {
  status: boolean;
  org: boolean;
  bot: boolean;
  role: boolean;
  search: boolean;
  cursor: boolean;
  sort: UserSort;
}

export interface UserListStatements {
  /**
   * The page and its total in one round trip: up to limit + 1 rows `{ summary: <UserSummaryDto as JSON
   * text>, id, cursor_value, total }`, the total (computed once) on each. An empty page is one row whose
   * `id` is null, there to carry the total.
   */
  page: string;
  /**
   * Lists inside one organization run as a prepared statement of this name (see poolQuery): planning
   * the page and its count costs PostgreSQL several times what running them does at small and medium
   * sizes (docs/proof.md), and inside one organization every plan is bounded by that organization's rows
   * (org_id leads every list index). Lists across all organizations are planned for their values on
   * every call: there a rare search term wants the trigram index and a common one an ordered scan that
   * stops after one page, and a generic plan would serve one of them badly.
   */
  name?: string;
  /** The named values of `page`, in parameter order. */
  parameters: (keyof UserListValues)[];
}

export interface UserListValues {
  status?: string;
  orgId?: string;
  botId?: string;
  role?: string;
  /** A LIKE pattern, already escaped. */
  pattern?: string;
  /** The same search term, lower-cased, as a plain substring (strpos). */
  term?: string;
  afterValue?: string;
  afterId?: string;
  offset: number;
  /** Rows to read: the page size plus one, to know whether there is a next page. */
  limit: number;
  /** Search and bot counts stop here. */
  countLimit: number;
}

const SORT_COLUMNS = { created_at: 'u.created_at', username: 'u.username', email: 'u.email' } as const;

/** Across organizations, a role at most this many users hold is read through the roles index (see build). */
export const FEW_MATCHES = 10_000;

/**
 * UserSummaryDto, field for field, of a page row `p`. created_at is printed as JavaScript's toISOString
 * does (UTC, three fractional digits, `Z`), the format every other timestamp of the API has.
 */
const SUMMARY_JSON = `(SELECT row_to_json(s)::text FROM (SELECT p.user_id, p.username, p.email, p.display_name,
  p.status, p.roles, to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at) AS s)`;

const statements = new Map<string, UserListStatements>();
let prepared = 0;

export function userListStatements(shape: UserListShape): UserListStatements {
  const key = JSON.stringify(shape);
  let built = statements.get(key);
  if (!built) {
    built = build(shape);
    statements.set(key, built);
  }
  return built;
}

function build(shape: UserListShape): UserListStatements {
  const names: (keyof UserListValues)[] = [];
  // A value used twice (a filter and its counter) is one parameter.
  const parameter = (name: keyof UserListValues) => {
    const index = names.indexOf(name);
    return `$${index >= 0 ? index + 1 : names.push(name)}`;
  };

  const from = shape.bot
    ? `users u LEFT JOIN user_bot_roles b ON b.user_id = u.id AND b.bot_id = ${parameter('botId')}`
    : 'users u';
  const where = [shape.status ? `u.status = ${parameter('status')}` : `u.status <> 'deleted'`];
  // Leads every list index (see the User entity): a list inside one organization reads only its rows.
  if (shape.org) where.push(`u.org_id = ${parameter('orgId')}`);
  if (shape.bot) {
    // The roles a user holds in the bot: its bot roles where set, else the organization roles.
    where.push(
      shape.role
        ? `coalesce(b.roles, u.roles) @> ARRAY[${parameter('role')}]::text[]`
        : 'b.user_id IS NOT NULL',
    );
  } else if (shape.role) {
    // Inside one organization (a prepared statement, see `name`) the role is a filter on the organization's
    // ordered scan, not a lookup in the roles GIN index: a generic plan cannot tell a role nearly every user
    // holds from a rare one, and at 1,000,000 users it took the index for `user` (988,281 entries, 60 ms
    // a page against 3 ms). Across organizations the plan is made for the value, and the index serves rare roles.
    where.push(
      shape.org ? `${parameter('role')} = ANY(u.roles)` : `u.roles @> ARRAY[${parameter('role')}]::text[]`,
    );
  }
  // search_text is lower-cased by PostgreSQL (see the UserSearchText migration), trigram-indexed.
  const like = shape.search ? `u.search_text LIKE ${parameter('pattern')}` : undefined;
  if (like) where.push(like);

  // Searches and bot filters (bot roles have no counters) count their matches, up to one past the limit.
  // An exact count of a common term costs a pass over every match (at 1,000,000 users, `ann` matches
  // 166,667 rows: about 300 ms of database CPU per request); stopping after the limit bounds it to about
  // 10 ms however many match, and a caller paging through results needs `next_cursor`, not the exact size
  // of a huge result. Other lists read the counters that triggers keep in `user_counts` (migrations
  // UserCounts and Organizations): one organization's rows by primary key, or one (role, status) summed
  // over every organization (user_counts_role_status_idx).
  const total =
    shape.search || shape.bot
      ? `(SELECT count(*)::int FROM (SELECT 1 FROM ${from} WHERE ${where.join(' AND ')}
          LIMIT ${parameter('countLimit')}) AS matches)`
      : `(SELECT coalesce(sum(n), 0)::int FROM user_counts
          WHERE ${shape.org ? `org_id = ${parameter('orgId')}` : 'true'}
            AND role = ${shape.role ? parameter('role') : `'*'`}
            AND ${shape.status ? `status = ${parameter('status')}` : `status <> 'deleted'`})`;

  const descending = shape.sort.startsWith('-');
  const column = SORT_COLUMNS[shape.sort.replace(/^-/, '') as keyof typeof SORT_COLUMNS];
  const direction = descending ? 'DESC' : 'ASC';
  if (shape.cursor) {
    where.push(
      `(${column}, u.id) ${descending ? '<' : '>'} (${parameter('afterValue')}, ${parameter('afterId')})`,
    );
  }
  const counted = shape.search || shape.bot;
  const offset = parameter('offset');
  const limit = parameter('limit');
  const columns = `u.id AS user_id, u.username, u.email, u.display_name, u.status, u.roles, u.created_at,
             ${column}::text AS cursor_value`;
  const sortKey = column.replace('u.', '');
  const orderOf = (alias: string) => `${alias}.${sortKey} ${direction}, ${alias}.user_id ${direction}`;
  // A page that cannot hold a user (none match, or the offset is past the last) reads no users: the total
  // is known first, and with no match an ordered scan would walk the whole index looking for one (a role
  // nobody holds, across 1,000,000 users: 7 s). A search's or bot's count stops at countLimit, so only a
  // count below it is exact.
  const gate = counted ? `t.total > LEAST(${offset}, ${parameter('countLimit')} - 1)` : `t.total > ${offset}`;
  // A search term few users match, or across organizations a role few hold, is read through its GIN index
  // and then sorted, instead of an ordered scan that walks past every user without it: PostgreSQL's
  // estimate for a value outside its statistics is too coarse to choose (a role nobody holds, across
  // 1,000,000 users: 7 s by the ordered scan), and a generic plan has no value at all. The total decides,
  // at run time: a search that counted fewer than its limit, or a role held by at most FEW_MATCHES users.
  // OFFSET 0 keeps PostgreSQL from merging the inner query into the ordered one. Not with a status as well
  // as a role: the index would read every holder of the role, however few of them have the status the
  // total counts. Inside one organization a role stays a filter on the ordered scan (see above).
  const fenced = shape.bot
    ? undefined
    : shape.search
      ? `t.total < ${parameter('countLimit')}`
      : !shape.org && shape.role && !shape.status
        ? `t.total <= ${FEW_MATCHES}`
        : undefined;
  // A search term many users match is found by walking the sort order and stopping after a page. Written
  // as strpos, which the trigram index cannot serve, so that no plan (a generic one least: it takes any
  // LIKE for a rare term) reads every match through that index and sorts them instead: at 10,000,000
  // users, `ann` in one organization matched 1,730 rows, 90 ms that way against 12 ms in order.
  const inOrder = (condition: string) =>
    condition === like && fenced ? `strpos(u.search_text, ${parameter('term')}) > 0` : condition;
  const ordered = (extra: string) => `SELECT ${columns}
      FROM ${from} WHERE ${[...where.map(inOrder), gate, extra].filter(Boolean).join(' AND ')}
      ORDER BY ${column} ${direction}, u.id ${direction}
      OFFSET ${offset} LIMIT ${limit}`;

  const rows = fenced
    ? `(${ordered(`NOT (${fenced})`)})
      UNION ALL
      (SELECT f.* FROM (SELECT ${columns} FROM ${from}
         WHERE ${[...where, gate, fenced].join(' AND ')} OFFSET 0) AS f
       ORDER BY ${orderOf('f')} OFFSET ${offset} LIMIT ${limit})`
    : ordered('');
  // The JSON is written outside the LIMIT, for the page's rows only: inside, a deep offset would write it
  // for every row it skips. The sort value as text keeps created_at's microseconds, which the cursor needs
  // and JSON drops. The total is joined to the page, so that an empty page still brings it; OFFSET 0
  // computes it once for every reference below.
  const page = `SELECT ${SUMMARY_JSON} AS summary, p.user_id AS id, p.cursor_value, t.total
    FROM (SELECT ${total} AS total OFFSET 0) AS t
    LEFT JOIN LATERAL (${rows}) AS p ON true
    ORDER BY ${orderOf('p')}`;
  return { page, parameters: names, name: shape.org ? `users_list_${++prepared}` : undefined };
}

export function parametersOf(names: (keyof UserListValues)[], values: UserListValues): unknown[] {
  return names.map((name) => values[name]);
}
