import {
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  errors,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  jwtVerify,
} from 'jose';
import type pg from 'pg';

interface KeyRow {
  kid: string;
  private_key_pem: string;
  public_jwk: JWK;
}

/**
 * The RS256 key pair that signs every token. Generated once and kept in dev_idp.signing_keys, so tokens
 * issued before a restart still verify after it, and every instance sharing the database signs alike.
 */
export class TokenSigner {
  private readonly verifyKeys: ReturnType<typeof createLocalJWKSet>;

  private constructor(
    readonly kid: string,
    private readonly privateKey: CryptoKey,
    readonly jwks: JSONWebKeySet,
  ) {
    this.verifyKeys = createLocalJWKSet(jwks);
  }

  /** Loads the newest key, creating the first one; call inside the schema's locked transaction. */
  static async loadOrCreate(client: pg.PoolClient): Promise<TokenSigner> {
    let { rows } = await client.query<KeyRow>(
      'SELECT kid, private_key_pem, public_jwk FROM dev_idp.signing_keys ORDER BY created_at DESC',
    );
    if (rows.length === 0) {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
      const publicJwk = await exportJWK(publicKey);
      const kid = await calculateJwkThumbprint(publicJwk);
      const pem = await exportPKCS8(privateKey);
      await client.query(
        'INSERT INTO dev_idp.signing_keys (kid, private_key_pem, public_jwk) VALUES ($1, $2, $3)',
        [kid, pem, JSON.stringify(publicJwk)],
      );
      rows = [{ kid, private_key_pem: pem, public_jwk: publicJwk }];
    }
    const current = rows[0];
    const privateKey = await importPKCS8(current.private_key_pem, 'RS256');
    const jwks: JSONWebKeySet = {
      keys: rows.map((row) => ({
        kty: row.public_jwk.kty,
        n: row.public_jwk.n,
        e: row.public_jwk.e,
        kid: row.kid,
        use: 'sig',
        alg: 'RS256',
      })),
    };
    return new TokenSigner(current.kid, privateKey, jwks);
  }

  sign(claims: JWTPayload): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: this.kid, typ: 'JWT' })
      .sign(this.privateKey);
  }

  /** Verifies signature and issuer; with `allowExpired`, an expired token still yields its claims. */
  async verify(token: string, issuer: string, allowExpired = false): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.verifyKeys, { issuer, algorithms: ['RS256'] });
      return payload;
    } catch (error) {
      if (allowExpired && error instanceof errors.JWTExpired) return error.payload;
      return undefined;
    }
  }
}
