import { describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { verifyWebhookSignature } from './webhook-signature.js';

const KEY = 'test-signing-key-0123456789';
const NOW = 1_800_000_000;
const body = Buffer.from('{"aggregateID":"1","event_type":"user.deactivated","sequence":3}');

function sign(payload: Buffer | string, key = KEY, t = NOW): string {
  return createHmac('sha256', key).update(`${t}.`).update(payload).digest('hex');
}

describe('verifyWebhookSignature', () => {
  it('accepts a valid signature over the raw body', () => {
    expect(verifyWebhookSignature(`t=${NOW},v1=${sign(body)}`, body, KEY, NOW)).toEqual({ ok: true });
  });

  it('accepts timestamps within 300 s either way', () => {
    expect(verifyWebhookSignature(`t=${NOW},v1=${sign(body)}`, body, KEY, NOW + 300).ok).toBe(true);
    expect(verifyWebhookSignature(`t=${NOW},v1=${sign(body)}`, body, KEY, NOW - 300).ok).toBe(true);
  });

  it('rejects a signature made with another key', () => {
    expect(
      verifyWebhookSignature(`t=${NOW},v1=${sign(body, 'another-key-0123456789')}`, body, KEY, NOW),
    ).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('rejects a tampered body', () => {
    const tampered = Buffer.from(body.toString().replace('"sequence":3', '"sequence":4'));
    expect(verifyWebhookSignature(`t=${NOW},v1=${sign(body)}`, tampered, KEY, NOW)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('rejects a body re-serialised with different whitespace (raw bytes matter)', () => {
    const reformatted = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 1));
    expect(verifyWebhookSignature(`t=${NOW},v1=${sign(body)}`, reformatted, KEY, NOW).ok).toBe(false);
  });

  it('rejects a timestamp more than 300 s off, even when correctly signed', () => {
    const old = NOW - 301;
    expect(verifyWebhookSignature(`t=${old},v1=${sign(body, KEY, old)}`, body, KEY, NOW)).toEqual({
      ok: false,
      reason: 'expired',
    });
    const future = NOW + 301;
    expect(verifyWebhookSignature(`t=${future},v1=${sign(body, KEY, future)}`, body, KEY, NOW).ok).toBe(
      false,
    );
  });

  it('rejects a changed timestamp (it is part of the signed text)', () => {
    expect(verifyWebhookSignature(`t=${NOW + 1},v1=${sign(body)}`, body, KEY, NOW)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('rejects a missing or empty header', () => {
    expect(verifyWebhookSignature(undefined, body, KEY, NOW)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyWebhookSignature('', body, KEY, NOW)).toEqual({ ok: false, reason: 'missing' });
  });

  it('rejects malformed headers without throwing', () => {
    for (const header of [
      'garbage',
      `v1=${sign(body)}`,
      `t=${NOW}`,
      `t=abc,v1=${sign(body)}`,
      `t=${NOW},v1=not-hex`,
      `t=${NOW},v1=${sign(body).slice(0, 10)}`,
      `t=${NOW},v0=${sign(body)}`,
    ]) {
      expect(verifyWebhookSignature(header, body, KEY, NOW)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('accepts when any of several v1 values matches (key rotation)', () => {
    const header = `t=${NOW},v1=${sign(body, 'old-key-0123456789abc')},v1=${sign(body)}`;
    expect(verifyWebhookSignature(header, body, KEY, NOW)).toEqual({ ok: true });
    const reversed = `t=${NOW},v1=${sign(body)},v1=${sign(body, 'old-key-0123456789abc')}`;
    expect(verifyWebhookSignature(reversed, body, KEY, NOW)).toEqual({ ok: true });
  });

  it('rejects when none of several v1 values matches', () => {
    const header = `t=${NOW},v1=${sign(body, 'k1-0123456789abcdef')},v1=${sign(body, 'k2-0123456789abcdef')}`;
    expect(verifyWebhookSignature(header, body, KEY, NOW)).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('tolerates spaces after commas and upper-case hex', () => {
    expect(verifyWebhookSignature(`t=${NOW}, v1=${sign(body).toUpperCase()}`, body, KEY, NOW).ok).toBe(true);
  });
});
