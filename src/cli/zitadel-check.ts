import { parseAppConfig } from '../config/app-config.js';
import { checkZitadel } from '../zitadel/zitadel-check.js';

/**
 * `npm run zitadel:check`: with the service's configuration (environment variables, as at start), calls
 * each Zitadel API the service needs once, read-only, and reports what works. Exits 1 when something does not.
 */
const config = parseAppConfig(process.env);
const z = config.zitadel;
if (!z.url) {
  console.error('ZITADEL_URL is not set: there is no real Zitadel to check (the embedded stand-in is used).');
  process.exit(2);
}
const results = await checkZitadel({
  url: z.url,
  orgId: z.orgId!,
  projectId: z.projectId!,
  clientId: z.clientId,
  clientSecret: z.clientSecret,
  redirectUri: z.redirectUri,
  postLogoutRedirectUri: z.postLogoutRedirectUri,
  credentials: z.pat ? { pat: z.pat } : { keyFile: z.keyFile! },
  introspection: z.introspection,
  timeoutMs: z.timeoutMs,
  retries: z.retries,
});
for (const result of results) console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${result.name}: ${result.detail}`);
const failed = results.filter((result) => !result.ok).length;
console.log(
  failed === 0 ? `All ${results.length} checks passed.` : `${failed} of ${results.length} checks failed.`,
);
process.exit(failed === 0 ? 0 : 1);
