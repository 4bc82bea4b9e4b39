import { describe, expect, it } from '@jest/globals';
import { describeDevice } from './device.js';

describe('describeDevice', () => {
  it('names browser and operating system', () => {
    expect(
      describeDevice(
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
      ),
    ).toBe('Chrome on Windows');
    expect(
      describeDevice(
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1',
      ),
    ).toBe('Safari on iOS');
  });

  it('falls back to a short raw string for unknown agents, null for none', () => {
    expect(describeDevice('bot-server/2.1')).toBe('bot-server/2.1');
    expect(describeDevice(undefined)).toBeNull();
  });
});
