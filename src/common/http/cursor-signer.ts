import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Logger } from '@nestjs/common';

const DEV_KEY_FILE = 'cursor-signing-key';
const MAC_BYTES = 32;

/**
 * Signs the opaque cursors this service hands out (`next_cursor`) with HMAC-SHA256, so that a cursor
 * coming back is one minted here, unchanged: `<base64url payload>.<base64url MAC>`. Anything else, however
 * well-formed its payload looks, is refused before its contents reach a query.
 */
export class CursorSigner {
  constructor(private readonly key: Buffer) {}

  sign(payload: string): string {
    const body = Buffer.from(payload, 'utf8').toString('base64url');
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The payload of a cursor minted with this key, or undefined for anything else. */
  verify(cursor: string): string | undefined {
    const dot = cursor.indexOf('.');
    if (dot <= 0 || dot !== cursor.lastIndexOf('.')) return undefined;
    const body = cursor.slice(0, dot);
    const given = Buffer.from(cursor.slice(dot + 1), 'base64url');
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.mac(body))) return undefined;
    return Buffer.from(body, 'base64url').toString('utf8');
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }
}

export const CURSOR_SIGNER = Symbol('CURSOR_SIGNER');

/**
 * The cursor key: CURSOR_SIGNING_KEY when set; else derived (HKDF-SHA256) from the session signing key
 * when one is configured (production always has one, identical on every instance, so a cursor from one
 * instance works on all); else, in development, 32 random bytes generated once under DATA_DIR like the
 * development session key, so cursors survive restarts.
 */
export async function loadCursorSigner(options: {
  configured: string | undefined;
  sessionKey: string | undefined;
  sessionKeyFile: string | undefined;
  dataDir: string;
}): Promise<CursorSigner> {
  if (options.configured) return new CursorSigner(Buffer.from(options.configured, 'utf8'));
  const sessionKey =
    options.sessionKey ??
    (options.sessionKeyFile ? await readFile(options.sessionKeyFile, 'utf8') : undefined);
  if (sessionKey) {
    const derived = hkdfSync('sha256', sessionKey, '', 'users-api list cursors v1', 32);
    return new CursorSigner(Buffer.from(derived));
  }
  const path = resolve(options.dataDir, DEV_KEY_FILE);
  let key = await readFile(path, 'utf8').catch(() => undefined);
  if (!key) {
    await mkdir(dirname(path), { recursive: true });
    try {
      // 'wx': of two instances starting on one data directory, the second reads the first one's key.
      await writeFile(path, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
      new Logger('CursorSigner').log(`Generated a development cursor signing key at ${path}`);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
    key = await readFile(path, 'utf8');
  }
  return new CursorSigner(Buffer.from(key.trim(), 'utf8'));
}
