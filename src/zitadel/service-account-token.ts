import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import { loadOnce } from './load-once.js';
import type { ZitadelConnection } from './zitadel-connection.js';

/** The JSON key file Zitadel issues for a service account (`"key"` is a PKCS#1 PEM). */
export interface ServiceAccountKey {
  type: string;
  keyId: string;
  key: string;
  userId: string;
}

/** Trades a signed JWT assertion for an access token at Zitadel's token endpoint. */
export type AssertionExchange = (assertion: string) => Promise<{ accessToken: string; expiresIn: number }>;

/** The bearer token this service presents to Zitadel's API. */
export interface ServiceAccountToken {
  /** Whether dropping the token and asking again can help after a 401 (not for a fixed PAT). */
  readonly refreshable: boolean;
  get(): Promise<string>;
  /** Forgets `token` if it is still the cached one (a concurrent caller may already have replaced it). */
  invalidate(token: string): void;
}

/** Tokens are renewed this long before Zitadel says they expire, so none expires in flight. */
export const TOKEN_RENEWAL_MARGIN_MS = 60_000;

export function serviceAccountToken(
  credentials: ZitadelConnection['credentials'],
  issuer: string,
  exchange: AssertionExchange,
): ServiceAccountToken {
  return 'pat' in credentials
    ? new PersonalAccessToken(credentials.pat)
    : new JwtProfileToken(credentials.keyFile, issuer, exchange);
}

export class PersonalAccessToken implements ServiceAccountToken {
  readonly refreshable = false;
  constructor(private readonly pat: string) {}

  get(): Promise<string> {
    return Promise.resolve(this.pat);
  }

  invalidate(): void {}
}

/**
 * Zitadel's "JWT profile" grant: an RS256 assertion signed with the service account's key is
 * exchanged for an access token, which is cached until shortly before it expires.
 */
export class JwtProfileToken implements ServiceAccountToken {
  readonly refreshable = true;
  // A file fixed by an operator is picked up on the next call rather than never.
  private readonly loadKey = loadOnce(() => readKeyFile(this.keyFile));
  private cached?: { token: string; renewAt: number };
  // Concurrent callers share one exchange instead of each minting a token.
  private pending?: Promise<string>;

  constructor(
    private readonly keyFile: string,
    private readonly issuer: string,
    private readonly exchange: AssertionExchange,
  ) {}

  get(): Promise<string> {
    if (this.cached && Date.now() < this.cached.renewAt) return Promise.resolve(this.cached.token);
    this.pending ??= this.renew().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async renew(): Promise<string> {
    const { keyId, userId, privateKey } = await this.loadKey();
    const assertion = jwt.sign({}, privateKey, {
      algorithm: 'RS256',
      keyid: keyId,
      issuer: userId,
      subject: userId,
      audience: this.issuer,
      expiresIn: '1h',
    });
    const { accessToken, expiresIn } = await this.exchange(assertion);
    this.cached = { token: accessToken, renewAt: Date.now() + expiresIn * 1000 - TOKEN_RENEWAL_MARGIN_MS };
    return accessToken;
  }
}

async function readKeyFile(path: string): Promise<{ keyId: string; userId: string; privateKey: KeyObject }> {
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(await readFile(path, 'utf8')) as Partial<ServiceAccountKey>;
  } catch (error) {
    throw new Error(`Cannot read the Zitadel service-account key file ${path}`, { cause: error });
  }
  if (typeof key.keyId !== 'string' || typeof key.userId !== 'string' || typeof key.key !== 'string')
    throw new Error(`The Zitadel key file ${path} lacks keyId, userId or key`);
  // node:crypto reads the PKCS#1 PEM Zitadel writes as well as PKCS#8 (a PKCS#8-only importer would not).
  return { keyId: key.keyId, userId: key.userId, privateKey: createPrivateKey(key.key) };
}
