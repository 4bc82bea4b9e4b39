import { describe, expect, it, jest } from '@jest/globals';
import type { ChangeFeedService, ChangeListener } from './change-feed.service.js';
import { CoherentCache } from './coherent-cache.js';

/** The part of the feed a cache uses, driven by hand. */
class FakeFeed {
  trusted = true;
  generation = 0;
  listeners: ChangeListener[] = [];
  register(listener: ChangeListener) {
    this.listeners.push(listener);
  }
  notice(table: 'users' | 'sessions', ids: string[] | '*') {
    this.generation++;
    for (const listener of this.listeners) listener.changed(table, ids);
  }
}

interface Row {
  id: string;
  owner: string;
}

function cacheOn(feed: FakeFeed, maxAgeMs = 60_000) {
  return new CoherentCache<Row>(feed as unknown as ChangeFeedService, {
    maxEntries: 100,
    maxAgeMs,
    staleAfter: (table, ids) =>
      table === 'sessions' ? { keys: ids } : { where: (row) => ids.includes(row.owner) },
  });
}

describe('CoherentCache', () => {
  it('reads once, then answers from memory', async () => {
    const cache = cacheOn(new FakeFeed());
    const loader = jest.fn(() => Promise.resolve<Row | null>({ id: 's1', owner: 'u1' }));
    await cache.load('s1', loader);
    expect(await cache.load('s1', loader)).toEqual({ id: 's1', owner: 'u1' });
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('never caches a miss', async () => {
    const cache = cacheOn(new FakeFeed());
    const loader = jest.fn(() => Promise.resolve(null));
    await cache.load('s1', loader);
    await cache.load('s1', loader);
    expect(loader).toHaveBeenCalledTimes(2);
  });

  it('drops entries named by a notice, by key or by predicate, and everything on a flush', async () => {
    const feed = new FakeFeed();
    const cache = cacheOn(feed);
    for (const [id, owner] of [
      ['s1', 'u1'],
      ['s2', 'u1'],
      ['s3', 'u2'],
    ])
      await cache.load(id, () => Promise.resolve({ id, owner }));
    feed.notice('sessions', ['s3']);
    expect(cache.size).toBe(2);
    feed.notice('users', ['u1']);
    expect(cache.size).toBe(0);
    await cache.load('s4', () => Promise.resolve({ id: 's4', owner: 'u9' }));
    feed.notice('users', '*');
    expect(cache.size).toBe(0);
  });

  it('does not store what it read while a notice arrived (the read may predate the change)', async () => {
    const feed = new FakeFeed();
    const cache = cacheOn(feed);
    const loader = jest.fn(() => {
      feed.notice('sessions', ['s1']);
      return Promise.resolve({ id: 's1', owner: 'u1' });
    });
    await cache.load('s1', loader);
    await cache.load('s1', loader);
    expect(loader).toHaveBeenCalledTimes(2);
  });

  it('neither answers nor stores while the feed is not trusted', async () => {
    const feed = new FakeFeed();
    const cache = cacheOn(feed);
    const loader = jest.fn(() => Promise.resolve<Row | null>({ id: 's1', owner: 'u1' }));
    await cache.load('s1', loader);
    feed.trusted = false;
    await cache.load('s1', loader);
    await cache.load('s2', loader);
    expect(loader).toHaveBeenCalledTimes(3);
    expect(cache.size).toBe(1);
  });

  it('re-reads an entry older than its maximum age even without a notice', async () => {
    const cache = cacheOn(new FakeFeed(), 50);
    const loader = jest.fn(() => Promise.resolve<Row | null>({ id: 's1', owner: 'u1' }));
    await cache.load('s1', loader);
    await cache.load('s1', loader);
    expect(loader).toHaveBeenCalledTimes(1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await cache.load('s1', loader);
    expect(loader).toHaveBeenCalledTimes(2);
  });
});
