import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { startTestApp } from './support/test-app.js';

/** The embedded PGlite path: no DATABASE_URL, data under DATA_DIR. */
describe('embedded database', () => {
  const directories: string[] = [];
  const dataDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'users-api-embedded-'));
    directories.push(dir);
    return dir;
  };
  afterAll(async () => {
    await Promise.all(directories.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('starts, migrates, keeps written data across a restart', async () => {
    const env = { DATABASE_URL: undefined, DATA_DIR: await dataDir(), DB_MIGRATIONS_RUN: 'true' };

    const first = await startTestApp(env);
    const db = first.app.get(DataSource);
    const [{ id }] = await db.query<{ id: string }[]>(
      `INSERT INTO users (zitadel_id, username, email, roles) VALUES ('123', 'pg', 'pg@lite.dev', '{user,admin}') RETURNING id`,
    );
    // pg_trgm is loaded into PGlite too: the search index exists.
    const [{ count }] = await db.query<{ count: string }[]>(
      `SELECT count(*) FROM pg_indexes WHERE indexname = 'users_search_text_trgm_idx'`,
    );
    expect(Number(count)).toBe(1);
    expect((await first.http({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    await first.close();

    const second = await startTestApp(env);
    try {
      const rows = await second.app
        .get(DataSource)
        .query<{ email: string; roles: string[] }[]>(`SELECT email, roles FROM users WHERE id = $1`, [id]);
      expect(rows).toEqual([{ email: 'pg@lite.dev', roles: ['user', 'admin'] }]);
    } finally {
      await second.close();
    }
  });

  it('as a real process: ready and /docs within 20 s, clean exit on SIGTERM, data kept', async () => {
    const dir = await dataDir();
    const port = await freePort();
    const run = async () => {
      const child = spawn(process.execPath, ['dist/src/main.js'], {
        env: {
          PATH: process.env.PATH,
          PORT: String(port),
          DATA_DIR: dir,
          LOG_LEVEL: 'info',
          NODE_ENV: 'development',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const started = Date.now();
      await waitFor(() => get(port, '/health/ready'), 20_000);
      const readyAfterMs = Date.now() - started;
      expect(await get(port, '/docs')).toBe(true);
      child.kill('SIGTERM');
      const code = await exited;
      return { code, output, readyAfterMs };
    };

    const first = await run();
    expect(first.code).toBe(0);
    expect(first.readyAfterMs).toBeLessThan(20_000);
    expect(first.output).toContain('Applied migrations');
    expect(first.output).toContain('Embedded PostgreSQL stopped; data flushed');
    expect(first.output).toContain('Shutdown complete');

    // The second start finds the schema already there: the data directory survived the shutdown.
    const second = await run();
    expect(second.code).toBe(0);
    expect(second.output).not.toContain('Applied migrations');
    expect(second.output).not.toMatch(/"level":50/);
  }, 60_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function get(port: number, path: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return res.ok;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready within ${timeoutMs} ms`);
}
