import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Logger } from '@nestjs/common';

/**
 * PostgreSQL in-process (PGlite), served over the PostgreSQL wire protocol on a loopback port, so the
 * service connects to it through exactly the same `pg` driver path as to a real server. It exists for
 * `npm start` on a machine with no database; with DATABASE_URL set it is never started.
 */
export class EmbeddedPostgres {
  private readonly logger = new Logger(EmbeddedPostgres.name);
  private db?: PGlite;
  private server?: PGLiteSocketServer;
  private url?: string;

  constructor(
    private readonly dataDir: string,
    /** PGlite runs one query at a time; the socket server multiplexes this many client connections onto it. */
    private readonly maxConnections: number,
  ) {}

  get connectionUrl(): string {
    if (!this.url) throw new Error('Embedded PostgreSQL is not started');
    return this.url;
  }

  async start(): Promise<string> {
    const directory = resolve(this.dataDir, 'pgdata');
    await mkdir(directory, { recursive: true });
    const started = Date.now();
    this.db = await PGlite.create({ dataDir: directory, extensions: { pg_trgm } });
    // Port 0: the OS picks a free loopback port, so two local instances never collide.
    this.server = new PGLiteSocketServer({
      db: this.db,
      host: '127.0.0.1',
      port: 0,
      maxConnections: this.maxConnections,
    });
    await this.server.start();
    const address = this.server.getServerConn();
    this.url = `postgres://postgres@${address}/postgres?sslmode=disable`;
    this.logger.log(`Embedded PostgreSQL (PGlite) at ${join(directory)} ready in ${Date.now() - started} ms`);
    return this.url;
  }

  /** Stops accepting connections, then closes PGlite so everything is flushed to the data directory. */
  async stop(): Promise<void> {
    if (!this.db) return;
    await this.server?.stop();
    if (!this.db.closed) await this.db.close();
    this.server = undefined;
    this.db = undefined;
    this.logger.log('Embedded PostgreSQL stopped; data flushed');
  }
}
