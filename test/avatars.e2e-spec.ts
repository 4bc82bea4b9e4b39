import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { UsersService } from '../src/users/users.service.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import { expectContract } from './support/contract.js';
import { bearer, setLocalStatus, signedInUser, type SignedInUser } from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const PATH = '/api/users/{id}/avatar';

/** Tiny but real 1×1 images. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);
const JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////' +
    '////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=',
  'base64',
);
const WEBP = Buffer.from('UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA', 'base64');

describe('avatars', () => {
  let t: TestApp;
  let admin: SignedInUser;
  let viewer: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    [admin, viewer] = await Promise.all([signedInUser(t, { roles: ['admin'] }), signedInUser(t)]);
  });
  afterAll(() => t.close());

  const upload = async (
    user: SignedInUser,
    bytes: Buffer | string,
    contentType: string,
    id = user.userId,
  ) => {
    const res = await t.http({
      method: 'PUT',
      url: `/api/users/${id}/avatar`,
      headers: { ...bearer(user.token), 'content-type': contentType },
      payload: bytes,
    });
    expectContract('PUT', PATH, res);
    return res;
  };
  const fetchAvatar = async (id: string, headers: Record<string, string> = {}, as = viewer) => {
    const res = await t.http({
      method: 'GET',
      url: `/api/users/${id}/avatar`,
      headers: { ...bearer(as.token), ...headers },
    });
    expectContract('GET', PATH, res);
    return res;
  };
  const avatarRow = async (userId: string) =>
    (
      await t.app
        .get(DataSource)
        .query<{ content_type: string; sha256: string }[]>(
          `SELECT content_type, sha256 FROM user_avatars WHERE user_id = $1`,
          [userId],
        )
    )[0];
  const profileAvatarUrl = async (userId: string) =>
    (await t.app.get(UsersService).findById(userId))!.avatarUrl;

  it.each([
    ['PNG', PNG, 'image/png'],
    ['JPEG', JPEG, 'image/jpeg'],
    ['WebP', WEBP, 'image/webp'],
  ])('stores a %s upload and serves the same bytes to any authenticated user', async (_name, bytes, type) => {
    const user = await signedInUser(t);
    const res = await upload(user, bytes, type);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      user_id: user.userId,
      status: 'updated',
      avatar_url: `/api/users/${user.userId}/avatar`,
    });
    expect(await profileAvatarUrl(user.userId)).toBe(`/api/users/${user.userId}/avatar`);
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });
    expect(me.json().avatar_url).toBe(`/api/users/${user.userId}/avatar`);

    const served = await fetchAvatar(user.userId);
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toBe(type);
    expect(served.rawPayload.equals(bytes)).toBe(true);
    expect(served.headers.etag).toBe(`"${createHash('sha256').update(bytes).digest('hex')}"`);
    expect(served.headers['cache-control']).toBe('private, max-age=300');
    expect(served.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers 304 when If-None-Match holds the current ETag, and 200 once the avatar changed', async () => {
    const user = await signedInUser(t);
    await upload(user, PNG, 'image/png');
    const first = await fetchAvatar(user.userId);
    const etag = String(first.headers.etag);

    const revalidated = await fetchAvatar(user.userId, { 'if-none-match': etag });
    expect(revalidated.statusCode).toBe(304);
    expect(revalidated.rawPayload.length).toBe(0);
    expect(revalidated.headers.etag).toBe(etag);
    expect(revalidated.headers['cache-control']).toBe('private, max-age=300');
    expect((await fetchAvatar(user.userId, { 'if-none-match': `"other", W/${etag}` })).statusCode).toBe(304);
    expect((await fetchAvatar(user.userId, { 'if-none-match': '"other"' })).statusCode).toBe(200);

    await upload(user, WEBP, 'image/webp');
    const changed = await fetchAvatar(user.userId, { 'if-none-match': etag });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers['content-type']).toBe('image/webp');
    expect(changed.headers.etag).not.toBe(etag);
  });

  it('judges the format by the content: a JPEG sent as image/png is stored as image/jpeg', async () => {
    const user = await signedInUser(t);
    expect((await upload(user, JPEG, 'image/png')).statusCode).toBe(200);
    expect(await avatarRow(user.userId)).toMatchObject({ content_type: 'image/jpeg' });
    expect((await fetchAvatar(user.userId)).headers['content-type']).toBe('image/jpeg');
  });

  it.each([
    ['a text file labelled image/png', Buffer.from('hello, I am not a picture\n'), 'image/png'],
    ['a GIF labelled image/webp', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), 'image/webp'],
    ['a PNG signature without IHDR', Buffer.concat([PNG.subarray(0, 8), Buffer.alloc(32)]), 'image/png'],
    ['an empty body', Buffer.alloc(0), 'image/jpeg'],
  ])('refuses %s with 415 and stores nothing', async (_name, bytes, type) => {
    const user = await signedInUser(t);
    expectProblem(await upload(user, bytes, type), 415, 'unsupported_media_type');
    expect(await avatarRow(user.userId)).toBeUndefined();
    expect(await profileAvatarUrl(user.userId)).toBeNull();
  });

  it.each([
    ['application/json', JSON.stringify({ image: 'x' })],
    ['text/plain', 'hello'],
    ['application/octet-stream', PNG],
    ['image/gif', PNG],
  ])('refuses the content type %s with 415', async (type, payload) => {
    const user = await signedInUser(t);
    expectProblem(await upload(user, payload, type), 415, 'unsupported_media_type');
    expect(await avatarRow(user.userId)).toBeUndefined();
  });

  it('refuses image bytes sent to a JSON route with 415 (not one field error per byte)', async () => {
    const res = await t.http({
      method: 'PUT',
      url: `/api/users/${viewer.userId}/settings`,
      headers: { ...bearer(viewer.token), 'content-type': 'image/png' },
      payload: PNG,
    });
    expectProblem(res, 415, 'unsupported_media_type');
    expect(res.json().errors).toBeUndefined();
  });

  it('refuses a body over 1 MB with 413 and stores nothing', async () => {
    const user = await signedInUser(t);
    const big = Buffer.concat([PNG, Buffer.alloc(1_048_576 - PNG.length + 1)]);
    expectProblem(await upload(user, big, 'image/png'), 413, 'payload_too_large');
    expect(await avatarRow(user.userId)).toBeUndefined();
    // Exactly the limit is fine.
    expect((await upload(user, big.subarray(0, 1_048_576), 'image/png')).statusCode).toBe(200);
  });

  it('never redirects: an external avatar_url is the profile’s own, the route serves the generated image', async () => {
    // Issue 14, section 6: GET /avatar redirected to any https avatar_url (an open redirect).
    const user = await signedInUser(t);
    for (const external of ['https://evil.example/phish', 'javascript:alert(1)']) {
      await t.app.get(UsersService).setAvatarUrl(user.userId, external);
      const res = await fetchAvatar(user.userId);
      expect(res.statusCode).toBe(200);
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    }
    // The contract's PUT example still works, and the profile names the external picture itself.
    const put = await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}`,
      headers: bearer(user.token),
      payload: { avatar_url: 'https://example.com/avatar.jpg' },
    });
    expect(put.statusCode).toBe(200);
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });
    expect(me.json().avatar_url).toBe('https://example.com/avatar.jpg');
    expect((await fetchAvatar(user.userId)).statusCode).toBe(200);
  });

  it('serves a generated SVG of the initials to users without an upload, with ETag, caching and a strict CSP', async () => {
    const user = await signedInUser(t);
    await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}`,
      headers: bearer(user.token),
      payload: { display_name: 'Ada <Lovelace>' },
    });
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });
    expect(me.json().avatar_url).toBe(`/api/users/${user.userId}/avatar`);

    const res = await fetchAvatar(user.userId);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(res.headers['cache-control']).toBe('private, max-age=300');
    expect(res.headers.etag).toMatch(/^"g-[0-9a-f]{40}"$/);
    expect(res.body).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(res.body).toContain('>AL</text>');
    expect(res.body).not.toContain('<script');
    // The same user gets the same image, on a colour derived from their id (two random users share one
    // in 360 runs, so "another user, another colour" is checked through the derivation, not by chance).
    expect((await fetchAvatar(user.userId)).body).toBe(res.body);
    const hueOf = (id: string) => createHash('sha256').update(id).digest().readUInt16BE(0) % 360;
    const other = await fetchAvatar(viewer.userId);
    expect(res.body).toContain(`fill="hsl(${hueOf(user.userId)}, 45%, 40%)"`);
    expect(other.body).toContain(`fill="hsl(${hueOf(viewer.userId)}, 45%, 40%)"`);

    const revalidated = await fetchAvatar(user.userId, { 'if-none-match': res.headers.etag as string });
    expect(revalidated.statusCode).toBe(304);
    // An upload replaces it, with another ETag.
    await upload(user, PNG, 'image/png');
    const uploaded = await fetchAvatar(user.userId, { 'if-none-match': res.headers.etag as string });
    expect(uploaded.statusCode).toBe(200);
    expect(uploaded.headers['content-type']).toBe('image/png');
  });

  it('answers 404 user_not_found for no user, and an image for every user that exists', async () => {
    const user = await signedInUser(t);
    expect((await fetchAvatar(user.userId)).statusCode).toBe(200);
    expectProblem(await fetchAvatar(randomUUID()), 404, 'user_not_found');
    expectProblem(await upload(admin, PNG, 'image/png', randomUUID()), 404, 'user_not_found');

    const deleted = await signedInUser(t);
    await upload(deleted, PNG, 'image/png');
    await setLocalStatus(t, deleted.userId, 'deleted');
    expectProblem(await fetchAvatar(deleted.userId), 404, 'user_not_found');

    expectProblem(await fetchAvatar('not-a-uuid'), 400, 'invalid_request');
    expectProblem(await upload(admin, PNG, 'image/png', 'not-a-uuid'), 400, 'invalid_request');
  });

  it('lets an admin upload for another user, and refuses another user (403) and anonymous callers (401)', async () => {
    const user = await signedInUser(t);
    expectProblem(await upload(viewer, PNG, 'image/png', user.userId), 403, 'forbidden');
    const anonymous = await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}/avatar`,
      headers: { 'content-type': 'image/png' },
      payload: PNG,
    });
    expectProblem(anonymous, 401, 'unauthorized');
    expectContract('PUT', PATH, anonymous);
    expect(await avatarRow(user.userId)).toBeUndefined();

    expect((await upload(admin, PNG, 'image/png', user.userId)).statusCode).toBe(200);
    expect(await avatarRow(user.userId)).toMatchObject({ content_type: 'image/png' });
  });

  it('keeps the uploaded avatar when the next login brings Zitadel’s picture', async () => {
    const user = await signedInUser(t);
    await upload(user, PNG, 'image/png');
    const remote = (await t.app.get(ZitadelClient).getUser(user.zitadelId))!;
    await t.app
      .get(UsersService)
      .syncFromZitadel({ ...remote, avatarUrl: 'https://zitadel.example/pic.png' }, []);
    expect(await profileAvatarUrl(user.userId)).toBe(`/api/users/${user.userId}/avatar`);
  });

  it('deletes the avatar with its user', async () => {
    const user = await signedInUser(t);
    await upload(user, PNG, 'image/png');
    const db = t.app.get(DataSource);
    await db.query(`DELETE FROM sessions WHERE user_id = $1`, [user.userId]);
    await db.query(`DELETE FROM users WHERE id = $1`, [user.userId]);
    expect(await avatarRow(user.userId)).toBeUndefined();
  });
});
