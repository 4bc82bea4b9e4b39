import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from './support/test-app.js';

const run = promisify(execFile);
const clientDir = fileURLToPath(new URL('../client/', import.meta.url));
const tsc = fileURLToPath(new URL('../node_modules/.bin/tsc', import.meta.url));

/**
 * client/ as another service gets it: built to JS and .d.ts, installed under its package name into an
 * empty project, and client/README.md's example run there with node against this service on a real port.
 */
describe('the client package', () => {
  let t: TestApp;
  let baseUrl: string;
  let project: string;

  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${port}`;
    await run(tsc, ['-p', join(clientDir, 'tsconfig.json')]);
    await writeFile(join(clientDir, 'dist/schema.d.ts'), await readFile(join(clientDir, 'schema.d.ts')));
    project = await mkdtemp(join(tmpdir(), 'users-api-client-'));
    await writeFile(
      join(project, 'package.json'),
      '{"name": "consumer", "private": true, "type": "module"}\n',
    );
    await mkdir(join(project, 'node_modules/@users-api'), { recursive: true });
    // What `npm install <path>` does for a path: a link to the package directory.
    await symlink(clientDir, join(project, 'node_modules/@users-api/client'), 'dir');
  }, 120_000);
  afterAll(async () => {
    await t.close();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it('declares its name, exports, built files and openapi-fetch as its own dependency', async () => {
    const pkg = JSON.parse(await readFile(join(clientDir, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(pkg).toMatchObject({
      name: '@users-api/client',
      type: 'module',
      exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      dependencies: { 'openapi-fetch': expect.any(String) },
    });
    const root = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(root.dependencies).not.toHaveProperty('openapi-fetch');
  });

  it("runs the README's example against the real server", async () => {
    const readme = await readFile(join(clientDir, 'README.md'), 'utf8');
    const example = /## Example[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    await writeFile(join(project, 'example.mjs'), example!);
    const { stdout } = await run(process.execPath, ['example.mjs'], {
      cwd: project,
      env: {
        ...process.env,
        USERS_API_URL: baseUrl,
        USERS_API_EMAIL: 'admin@users-api.test',
        USERS_API_PASSWORD: 'Admin-Passw0rd!',
      },
    });
    expect(stdout).toMatch(/^signed in as admin@users-api\.test \(admin\)$/m);
    expect(stdout).toMatch(/^listed [1-9]\d* users$/m);
    expect(stdout).toMatch(/^no such user \(request [\w-]+\)$/m);
  }, 60_000);
});
