import { readdirSync, readFileSync } from 'node:fs';

// Nest 12 packages are ESM only, so jest runs in its native ESM mode (node --experimental-vm-modules,
// see the `test` script); SWC transforms TypeScript with the same settings as the build, decorator
// metadata included, and leaves type checking to `npm run typecheck`.
const swc = JSON.parse(readFileSync(new URL('./.swcrc', import.meta.url), 'utf8'));

/**
 * Installed packages that are ESM only. Several CommonJS dependencies (light-my-request, @fastify/static)
 * require() such packages; Node 20 allows that, jest's CommonJS loader does not before Node 24.9. So jest
 * compiles these packages with SWC, to CommonJS exactly where they are required as CommonJS.
 */
function esmOnlyPackages(directory = new URL('./node_modules/', import.meta.url)) {
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    if (!entry.isDirectory() || entry.name.startsWith('.')) return [];
    const url = new URL(`${entry.name}/`, directory);
    if (entry.name.startsWith('@')) return esmOnlyPackages(url).map((name) => `${entry.name}/${name}`);
    try {
      return JSON.parse(readFileSync(new URL('package.json', url), 'utf8')).type === 'module'
        ? [entry.name]
        : [];
    } catch {
      return [];
    }
  });
}
const escape = (name) => name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { ...swc, swcrc: false }],
    // No module type given: @swc/jest emits CommonJS where jest loads the file as CommonJS.
    '^.+\\.js$': ['@swc/jest', { jsc: { target: 'es2023' }, swcrc: false }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnlyPackages().map(escape).join('|')})/)`],
  // Sources import './x.js' as ESM requires; jest resolves that to the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: [
    '<rootDir>/src/**/*.spec.ts',
    '<rootDir>/dev-idp/**/*.spec.ts',
    '<rootDir>/test/**/*.e2e-spec.ts',
  ],
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  maxWorkers: 2,
  testTimeout: 30_000,
  // A worker that has finished still has to free its heap before the process is gone: measured at
  // 300-560 ms for a 290-455 MB worker on the loaded 2-core machine, after its event loop was already
  // empty (its 'exit' event came 0-12 ms after jest's end message). Jest's default 500 ms then killed it
  // and printed "A worker process has failed to exit gracefully", a leak that was none; full runs grow
  // larger heaps. 5 s still reports real leaks: a socket, pool or ref'd timer keeps a worker alive longer.
  workerGracefulExitTimeout: 5_000,
};
