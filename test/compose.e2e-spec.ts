import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

/** `docker compose` (the v2 plugin) when this machine has it; no Docker engine is needed for `config`. */
async function composeAvailable(): Promise<boolean> {
  try {
    await run('docker', ['compose', 'version'], { cwd: root });
    return true;
  } catch {
    return false;
  }
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }>;
}

describe('compose.yaml', () => {
  it('is a valid compose file (docker compose config --quiet)', async () => {
    if (!(await composeAvailable())) {
      console.warn(
        'SKIPPED: `docker compose` is not installed on this machine, so compose.yaml was not validated by ' +
          'Docker; the structural checks below still ran.',
      );
      return;
    }
    await expect(
      run('docker', ['compose', '-f', 'compose.yaml', 'config', '--quiet'], { cwd: root }),
    ).resolves.toBeDefined();
  });

  it('runs the real stack: PostgreSQL, Redis, Zitadel set up on first start, two replicas behind a proxy', () => {
    const compose = parse(readFileSync(new URL('../compose.yaml', import.meta.url), 'utf8')) as {
      services: Record<string, Service>;
    };
    const { postgres, redis, zitadel, 'zitadel-setup': setup, 'users-api': api, proxy } = compose.services;
    expect(postgres?.image).toMatch(/^postgres:/);
    expect(redis?.image).toMatch(/^redis:/);
    expect(zitadel?.image).toMatch(/^ghcr\.io\/zitadel\/zitadel:/);
    expect(String(zitadel?.command)).toMatch(/^start-from-init --masterkey /);
    expect(zitadel?.environment).toMatchObject({ ZITADEL_FIRSTINSTANCE_PATPATH: expect.any(String) });
    expect(setup?.depends_on).toMatchObject({ zitadel: { condition: 'service_healthy' } });
    expect(api?.deploy?.replicas).toBe(2);
    expect(api?.environment).toMatchObject({ NODE_ENV: 'production', TRUST_PROXY: '1' });
    expect(api?.depends_on).toMatchObject({
      'zitadel-setup': { condition: 'service_completed_successfully' },
    });
    expect(proxy?.image).toMatch(/^nginx:/);
  });
});
