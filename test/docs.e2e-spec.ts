import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';

/**
 * docs/configuration.md is the reference of every environment variable: each key of the zod `envSchema`
 * in src/config/app-config.ts must be named there, and each variable its tables name must be one the
 * config reads. The schema is read as text (it is not exported): its keys are the `NAME:` lines of the
 * `envSchema = z.object({ … })` block.
 */
const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/**
 * Variables a table may name although the service's config does not read them: read by the test suite
 * only. Listed one by one, so a misspelt or removed variable in the docs still fails.
 */
const TEST_ONLY_VARIABLES = new Set(['TEST_REDIS_URL']);

function schemaKeys(): string[] {
  const source = read('src/config/app-config.ts');
  const start = source.indexOf('const envSchema = z.object({');
  expect(start).toBeGreaterThanOrEqual(0);
  const end = source.indexOf('\n});', start);
  expect(end).toBeGreaterThan(start);
  return [...source.slice(start, end).matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((match) => match[1]);
}

function variablesInTableRows(markdown: string): string[] {
  const rows = markdown.split('\n').filter((line) => line.trimStart().startsWith('|'));
  const names = rows.flatMap((row) => [...row.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1]));
  return [...new Set(names)];
}

describe('docs/configuration.md', () => {
  const keys = schemaKeys();
  const doc = read('docs/configuration.md');

  it('reads the schema (sanity: a few known keys are found)', () => {
    expect(keys.length).toBeGreaterThan(40);
    expect(keys).toEqual(
      expect.arrayContaining(['NODE_ENV', 'DATABASE_URL', 'ZITADEL_RECONCILE_PAGE_DELAY_MS']),
    );
  });

  it('documents every environment variable the config reads', () => {
    const undocumented = keys.filter((key) => !new RegExp(`\\b${key}\\b`).test(doc));
    expect(undocumented).toEqual([]);
  });

  it('documents no variable the config does not read', () => {
    const named = variablesInTableRows(doc);
    expect(named.length).toBeGreaterThan(40);
    const unknown = named.filter((name) => !keys.includes(name) && !TEST_ONLY_VARIABLES.has(name));
    expect(unknown).toEqual([]);
  });

  it('allows only test-only variables the config really does not read', () => {
    expect([...TEST_ONLY_VARIABLES].filter((name) => keys.includes(name))).toEqual([]);
  });
});
