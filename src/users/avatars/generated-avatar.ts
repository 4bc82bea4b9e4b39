import { createHash } from 'node:crypto';

/**
 * The avatar of a user who has not uploaded one: their initials on a colour derived from their id, as
 * SVG. Deterministic (the same user gets the same image on every instance, so its ETag is stable) and
 * tiny. Served with a CSP that forbids scripts and every external resource (see AvatarsController).
 */
export const GENERATED_AVATAR_CSP = "default-src 'none'; style-src 'unsafe-inline'";

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Up to two initials: the first grapheme of the first and of the last word, upper-cased. */
export function initialsOf(name: string): string {
  const words = name.split(/[\s._@-]+/u).filter((word) => /\p{L}|\p{N}/u.test(word));
  const first = (word: string | undefined) => {
    if (!word) return '';
    for (const { segment } of segmenter.segment(word)) {
      if (/\p{L}|\p{N}/u.test(segment)) return segment.toLocaleUpperCase();
    }
    return '';
  };
  const initials = first(words[0]) + (words.length > 1 ? first(words.at(-1)) : '');
  return initials || '?';
}

const escapeXml = (text: string) =>
  text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

export function generatedAvatarSvg(userId: string, name: string): string {
  const hue = createHash('sha256').update(userId).digest().readUInt16BE(0) % 360;
  const initials = escapeXml(initialsOf(name));
  return (
    '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128" role="img" ' +
    `aria-label="${initials}"><rect width="128" height="128" fill="hsl(${hue}, 45%, 40%)"/>` +
    '<text x="64" y="64" dy="0.35em" fill="#ffffff" font-family="system-ui, -apple-system, sans-serif" ' +
    `font-size="52" font-weight="600" text-anchor="middle">${initials}</text></svg>`
  );
}
