// `npm run fuzz -- --runs N [--seed S]`: the fuzz spec alone with N cases per operation (slow operations
// get a third), after the build. Plain ESM so it needs no compilation; jest does the rest as in npm test.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '1000' }, seed: { type: 'string' } },
});
if (!/^\d+$/.test(values.runs)) {
  console.error('--runs takes a positive integer');
  process.exit(2);
}
const env = { ...process.env, FUZZ_RUNS: values.runs };
if (values.seed !== undefined) env.FUZZ_SEED = values.seed;
const result = spawnSync(
  process.execPath,
  [
    '--experimental-vm-modules',
    '--no-warnings=ExperimentalWarning',
    'node_modules/jest/bin/jest.js',
    'test/fuzz.e2e-spec.ts',
  ],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
