import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port that tests control, placed between the service and a dependency:
 * `pause()` stops forwarding (a network that silently drops everything: requests hang), `cut()` destroys
 * every connection and refuses new ones (the dependency is gone), `restore()` returns to normal.
 */
export class TcpProxy {
  private mode: 'open' | 'paused' | 'cut' = 'open';
  private readonly pairs = new Set<{ client: Socket; upstream?: Socket }>();
  /** Connections accepted while paused, connected upstream on restore. */
  private held: Socket[] = [];

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (client: Socket) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get connections(): number {
    return this.pairs.size;
  }

  pause(): void {
    this.mode = 'paused';
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream?.pause();
    }
  }

  cut(): void {
    this.mode = 'cut';
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    for (const socket of this.held) socket.destroy();
    this.held = [];
  }

  restore(): void {
    this.mode = 'open';
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream?.resume();
    }
    const held = this.held;
    this.held = [];
    for (const client of held) this.connect(client);
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'cut') {
      client.destroy();
    } else if (this.mode === 'paused') {
      client.pause();
      this.held.push(client);
    } else {
      this.connect(client);
    }
  }

  private connect(client: Socket): void {
    if (client.destroyed) return;
    const upstream = createConnection(this.target);
    const pair = { client, upstream };
    this.pairs.add(pair);
    upstream.on('error', () => client.destroy());
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}
