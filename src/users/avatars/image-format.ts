/** The image formats an avatar may have, named by the content type they are served with. */
export const AVATAR_CONTENT_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type AvatarContentType = (typeof AVATAR_CONTENT_TYPES)[number];

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The format of an image, judged by its bytes: the signature and the first structure each format
 * requires (PNG: the IHDR chunk; JPEG: SOI followed by a marker; WebP: a RIFF container of type WEBP
 * whose first chunk is VP8, VP8L or VP8X). The declared content type and any file name are ignored, so a
 * text file labelled image/png is refused. This is a gate, not a decoder: it does not prove the rest of
 * the file is intact, but browsers treat such bytes as the image type served (with nosniff) and nothing
 * here interprets them further.
 */
export function detectImageType(bytes: Buffer): AvatarContentType | undefined {
  if (
    bytes.length >= 24 &&
    bytes.subarray(0, 8).equals(PNG_SIGNATURE) &&
    bytes.toString('latin1', 12, 16) === 'IHDR'
  ) {
    return 'image/png';
  }
  // SOI (FFD8), then a marker: FF followed by a marker code (APPn, DQT, SOF, COM...).
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff && bytes[3] >= 0xc0) {
    return 'image/jpeg';
  }
  if (
    bytes.length >= 16 &&
    bytes.toString('latin1', 0, 4) === 'RIFF' &&
    bytes.toString('latin1', 8, 12) === 'WEBP' &&
    /^VP8[ LX]$/.test(bytes.toString('latin1', 12, 16))
  ) {
    return 'image/webp';
  }
  return undefined;
}
