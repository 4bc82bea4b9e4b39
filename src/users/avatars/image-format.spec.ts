import { describe, expect, it } from '@jest/globals';
import { etagMatches } from './avatars.controller.js';
import { detectImageType } from './image-format.js';

const bytes = (...parts: Array<string | number[] | Buffer>) =>
  Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p as number[]))),
  );

describe('detectImageType', () => {
  const png = bytes(
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13],
    'IHDR',
    new Array(13).fill(0),
  );

  it('recognizes PNG, JPEG and WebP by their bytes', () => {
    expect(detectImageType(png)).toBe('image/png');
    expect(detectImageType(bytes([0xff, 0xd8, 0xff, 0xe0, 0, 16], 'JFIF'))).toBe('image/jpeg');
    expect(detectImageType(bytes([0xff, 0xd8, 0xff, 0xdb, 0, 67]))).toBe('image/jpeg');
    expect(detectImageType(bytes('RIFF', [0x22, 0, 0, 0], 'WEBPVP8 ', [0x16, 0, 0, 0]))).toBe('image/webp');
    expect(detectImageType(bytes('RIFF', [0x22, 0, 0, 0], 'WEBPVP8L', [0x16, 0, 0, 0]))).toBe('image/webp');
    expect(detectImageType(bytes('RIFF', [0x22, 0, 0, 0], 'WEBPVP8X', [0x16, 0, 0, 0]))).toBe('image/webp');
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['text', bytes('hello world, this is text')],
    ['GIF', bytes('GIF89a', [1, 0, 1, 0])],
    ['PNG signature only', png.subarray(0, 8)],
    ['PNG without IHDR', bytes(png.subarray(0, 12), 'IDAT', new Array(13).fill(0))],
    ['JPEG SOI only', bytes([0xff, 0xd8])],
    ['RIFF WAVE', bytes('RIFF', [0x22, 0, 0, 0], 'WAVEfmt ', [0x10, 0, 0, 0])],
    ['WEBP without VP8 chunk', bytes('RIFF', [0x22, 0, 0, 0], 'WEBPABCD', [0, 0, 0, 0])],
    ['SVG', bytes('<svg xmlns="http://www.w3.org/2000/svg"/>')],
  ])('refuses %s', (_name, input) => {
    expect(detectImageType(input)).toBeUndefined();
  });
});

describe('etagMatches', () => {
  it('uses the weak comparison over a list, and * matches', () => {
    expect(etagMatches('"abc"', '"abc"')).toBe(true);
    expect(etagMatches('W/"abc"', '"abc"')).toBe(true);
    expect(etagMatches('"x", "abc"', '"abc"')).toBe(true);
    expect(etagMatches('*', '"abc"')).toBe(true);
    expect(etagMatches('"abcd"', '"abc"')).toBe(false);
    expect(etagMatches('abc', '"abc"')).toBe(false);
  });
});
