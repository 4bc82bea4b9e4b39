import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { Algorithm } from 'jsonwebtoken';

/**
 * The key pair that signs session tokens, as KeyObjects (jsonwebtoken is far slower with PEM strings, which
 * it re-parses on every call). The algorithm follows from the key: EC P-256 → ES256, RSA → RS256.
 */
export interface SessionSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  algorithm: Algorithm;
  /** RFC 7638 thumbprint of the public key; tokens carry it as `kid`. */
  keyId: string;
}

const DEV_KEY_FILE = 'session-signing-key.pem';

export async function loadSessionSigningKey(options: {
  pem: string | undefined;
  file: string | undefined;
  dataDir: string;
}): Promise<SessionSigningKey> {
  const logger = new Logger('SessionSigningKey');
  let pem = options.pem ?? (options.file ? await readFile(options.file, 'utf8') : undefined);
  if (!pem) {
    // Development only (configuration refuses production without a key): one key per data directory,
    // so tokens survive restarts.
    const path = resolve(options.dataDir, DEV_KEY_FILE);
    pem = await readFile(path, 'utf8').catch(() => undefined);
    if (!pem) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, pem, { mode: 0o600 });
      logger.log(`Generated a development session signing key at ${path}`);
    }
  }
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    algorithm: algorithmFor(privateKey),
    keyId: await calculateJwkThumbprint(await exportJWK(publicKey)),
  };
}

function algorithmFor(key: KeyObject): Algorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`SESSION_SIGNING_KEY: only RSA and P-256 EC keys are supported, not ${type ?? 'this key'}`);
}
