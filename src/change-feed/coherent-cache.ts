import { LRUCache } from 'lru-cache';
import type { ChangedIds, ChangedTable, ChangeFeedService, ChangeListener } from './change-feed.service.js';

export interface CoherentCacheOptions<V> {
  maxEntries: number;
  /** The second line of defence: an entry is re-read after this long even if no notice came. */
  maxAgeMs: number;
  /** Which entries a change makes stale: the keys to delete, or a predicate over the entries. */
  staleAfter(
    table: ChangedTable,
    ids: readonly string[],
  ): { keys?: Iterable<string>; where?: (value: V) => boolean };
}

/**
 * A bounded in-process cache that the change feed keeps coherent with the database: entries are dropped
 * when a notice says their rows changed, everything is dropped when the feed (re)connects or is lost, and
 * nothing is read from or stored in it while the feed is not trusted. Only found rows are cached (a miss
 * is asked again next time), so a row created elsewhere is never hidden.
 */
export class CoherentCache<V extends object> implements ChangeListener {
  private readonly entries: LRUCache<string, V>;

  constructor(
    private readonly feed: ChangeFeedService,
    private readonly options: CoherentCacheOptions<V>,
  ) {
    this.entries = new LRUCache<string, V>({ max: options.maxEntries, ttl: options.maxAgeMs });
    feed.register(this);
  }

  /**
   * The cached value, or the loader's (stored when it found something and no notice arrived meanwhile:
   * a notice that overtook the read may describe a change the read did not see).
   */
  async load(key: string, loader: () => Promise<V | null>): Promise<V | null> {
    if (!this.feed.trusted) return loader();
    const cached = this.entries.get(key);
    if (cached) return cached;
    const generation = this.feed.generation;
    const value = await loader();
    if (value && this.feed.trusted && this.feed.generation === generation) this.entries.set(key, value);
    return value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  changed(table: ChangedTable, ids: ChangedIds): void {
    if (ids === '*') {
      this.flush();
      return;
    }
    const { keys, where } = this.options.staleAfter(table, ids);
    if (keys) for (const key of keys) this.entries.delete(key);
    if (where) {
      const stale: string[] = [];
      for (const [key, value] of this.entries.entries()) if (where(value)) stale.push(key);
      for (const key of stale) this.entries.delete(key);
    }
  }

  flush(): void {
    this.entries.clear();
  }
}
