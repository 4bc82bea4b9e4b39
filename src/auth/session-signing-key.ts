import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import type { Algorithm } from 'jsonwebtoken';

/**
 * The key that signs and verifies session tokens, as KeyObjects (jsonwebtoken re-parses a PEM string or a
 * raw secret on every call; a KeyObject it uses as it is). Only this service signs and verifies session
 * tokens, so a shared secret is enough: HS256 by default (a 256-bit secret), ES256 or RS256 when a PEM
 * private key is configured (the format before HS256 became the default; still accepted).
 */
export interface SessionSigningKey {
  /** What signs: the secret (HS256) or the private key. */
  signingKey: KeyObject;
  /** What verifies: the same secret (HS256) or the public key. */
  verificationKey: KeyObject;
  algorithm: Extract<Algorithm, 'HS256' | 'ES256' | 'RS256'>;
  /**
   * Tokens carry it as `kid`. For a key pair the RFC 7638 thumbprint of the public key; for a secret an
   * HMAC of a fixed label under the secret (it tells nothing about the secret, and changes with it).
   */
  keyId: string;
}

/** Development only: the generated secret, one per data directory so that tokens survive restarts. */
const DEV_SECRET_FILE = 'session-signing-secret';
export const MIN_SECRET_BYTES = 32;

/** A secret as configured: base64 or base64url text (padding and surrounding whitespace allowed). */
export function decodeSecret(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes.length >= MIN_SECRET_BYTES ? bytes : undefined;
}

/** True when the configured value is usable: a PEM private key, or a secret of at least 256 bits. */
export function isSigningKeyText(text: string): boolean {
  return text.includes('PRIVATE KEY') || decodeSecret(text) !== undefined;
}

export async function loadSessionSigningKey(options: {
  key: string | undefined;
  file: string | undefined;
  dataDir: string;
}): Promise<SessionSigningKey> {
  let text = options.key ?? (options.file ? await readFile(options.file, 'utf8') : undefined);
  if (!text) {
    // Configuration refuses production without a key.
    const path = resolve(options.dataDir, DEV_SECRET_FILE);
    text = await readFile(path, 'utf8').catch(() => undefined);
    if (!text) {
      text = randomBytes(MIN_SECRET_BYTES).toString('base64url');
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${text}\n`, { mode: 0o600 });
      new Logger('SessionSigningKey').log(`Generated a development session signing secret at ${path}`);
    }
  }
  return sessionSigningKey(text);
}

export function sessionSigningKey(text: string): SessionSigningKey {
  if (text.includes('PRIVATE KEY')) {
    const privateKey = createPrivateKey(text);
    const publicKey = createPublicKey(privateKey);
    return {
      signingKey: privateKey,
      verificationKey: publicKey,
      algorithm: algorithmFor(privateKey),
      keyId: thumbprint(publicKey),
    };
  }
  const secret = decodeSecret(text);
  if (!secret) {
    throw new Error(
      `SESSION_SIGNING_KEY: must be a PEM private key or a secret of at least ${MIN_SECRET_BYTES * 8} bits in base64`,
    );
  }
  const key = createSecretKey(secret);
  return {
    signingKey: key,
    verificationKey: key,
    algorithm: 'HS256',
    keyId: createHmac('sha256', secret)
      .update('users-api session token key id')
      .digest('base64url')
      .slice(0, 22),
  };
}

function algorithmFor(key: KeyObject): 'ES256' | 'RS256' {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`SESSION_SIGNING_KEY: only RSA and P-256 EC keys are supported, not ${type ?? 'this key'}`);
}

/** RFC 7638: SHA-256 over the required members of the public JWK, in lexicographic order. */
function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}
