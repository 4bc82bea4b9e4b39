// One-shot set-up of Zitadel for users-api in compose.yaml (runs in the users-api image: Node, no deps).
// Reads the service account's PAT that Zitadel's first-instance set-up wrote, then creates what the README
// ("Identity", "Live sync with Zitadel") asks for, and writes /bootstrap/users-api.env for the replicas.
import { generateKeyPairSync } from 'node:crypto';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const ENV_FILE = '/bootstrap/users-api.env';
const KEY_FILE = '/bootstrap/session-signing-key.pem';
const NODE_UID = 1000; // the image's `node` user, which runs the replicas

if (existsSync(ENV_FILE)) {
  console.log(`${ENV_FILE} exists: Zitadel is already set up`);
  process.exit(0);
}
const base = process.env.ZITADEL_URL;
const pat = readFileSync('/bootstrap/service-account.pat', 'utf8').trim();

async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${pat}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

const { org } = await call('GET', '/management/v1/orgs/me');
const { id: projectId } = await call('POST', '/management/v1/projects', {
  name: 'users-api',
  projectRoleAssertion: true,
});
await call('POST', `/management/v1/projects/${projectId}/roles/_bulk`, {
  roles: [
    { key: 'admin', displayName: 'Administrator' },
    { key: 'manager', displayName: 'Manager' },
    { key: 'user', displayName: 'User' },
  ],
});
// A public web client with PKCE: users-api sends no client secret.
const app = await call('POST', `/management/v1/projects/${projectId}/apps/oidc`, {
  name: 'users-api',
  redirectUris: [process.env.REDIRECT_URI],
  postLogoutRedirectUris: [process.env.POST_LOGOUT_REDIRECT_URI],
  responseTypes: ['OIDC_RESPONSE_TYPE_CODE'],
  grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'],
  appType: 'OIDC_APP_TYPE_WEB',
  authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE',
  accessTokenType: 'OIDC_TOKEN_TYPE_JWT',
  devMode: true, // http redirect URIs on localhost
});
// Actions v2: user events to the service, through the proxy (either replica may take them).
const target = await call('POST', '/v2/actions/targets', {
  name: 'users-api events',
  restWebhook: { interruptOnError: false },
  endpoint: process.env.EVENTS_URL,
  timeout: '10s',
  payloadType: 'PAYLOAD_TYPE_JSON',
});
for (const group of ['user', 'user.grant'])
  await call('PUT', '/v2/actions/executions', { condition: { event: { group } }, targets: [target.id] });

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
writeFileSync(KEY_FILE, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
const env = {
  ZITADEL_ORG_ID: org.id,
  ZITADEL_PROJECT_ID: projectId,
  ZITADEL_CLIENT_ID: app.clientId,
  ZITADEL_PAT: pat,
  ZITADEL_WEBHOOK_SIGNING_KEY: target.signingKey,
  SESSION_SIGNING_KEY_FILE: KEY_FILE,
};
writeFileSync(
  ENV_FILE,
  Object.entries(env)
    .map(([name, value]) => `${name}='${String(value)}'\n`)
    .join(''),
  { mode: 0o600 },
);
for (const file of [ENV_FILE, KEY_FILE]) chownSync(file, NODE_UID, NODE_UID);
console.log(`Zitadel set up: project ${projectId}, client ${app.clientId}, target ${target.id}`);
