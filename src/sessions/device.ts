import Bowser from 'bowser';

/** "Chrome on Windows" from a User-Agent header, parsed once at login; null when there is nothing to say. */
export function describeDevice(userAgent: string | undefined): string | null {
  if (!userAgent) return null;
  const { browser, os } = Bowser.parse(userAgent.slice(0, 512));
  const parts = [browser.name, os.name].filter(Boolean);
  if (parts.length === 2) return `${parts[0]} on ${parts[1]}`;
  return parts[0] ?? userAgent.slice(0, 64);
}
