import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
/** No telemetry and no update check: the linters stay on this machine. */
const env = {
  ...process.env,
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  NO_COLOR: '1',
};

/** Runs a linter that exits non-zero on findings; its JSON report is what counts. */
async function report(command: string, args: string[]): Promise<string> {
  try {
    return (await run(bin(command), args, { cwd: root, env, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    const { stdout } = error as { stdout?: string };
    if (!stdout) throw error;
    return stdout;
  }
}

describe('the committed openapi.json passes the standard linters', () => {
  it('Spectral (spectral:oas and the OWASP ruleset, .spectral.yaml): no errors', async () => {
    const findings = JSON.parse(
      await report('spectral', ['lint', 'openapi.json', '-f', 'json', '-q']),
    ) as Array<{
      code: string;
      severity: number;
      path: string[];
    }>;
    const errors = findings.filter((finding) => finding.severity === 0);
    expect(errors.map((e) => `${e.code} at ${e.path.join('.')}`)).toEqual([]);
    // Every warning left is one .spectral.yaml lists and explains.
    const justified = [
      'owasp:api2:2023-read-restricted',
      'owasp:api8:2023-define-error-responses-401',
      'owasp:api3:2023-no-additionalProperties',
      'owasp:api3:2023-constrained-additionalProperties',
    ];
    expect(
      [...new Set(findings.map((finding) => finding.code))].filter((c) => !justified.includes(c)),
    ).toEqual([]);
  }, 120_000);

  it('Redocly (recommended, redocly.yaml): no errors and no warnings', async () => {
    const output = JSON.parse(await report('redocly', ['lint', 'openapi.json', '--format', 'json'])) as {
      totals: { errors: number; warnings: number };
    };
    expect(output.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 120_000);
});
