import { describe, expect, it, jest } from '@jest/globals';
import { ApiError } from '../common/errors/api-error.js';
import { brokenRules, PasswordPolicyService } from './password-policy.service.js';
import type { ZitadelClient } from './zitadel.client.js';
import type { PasswordComplexitySettings } from './zitadel.types.js';

const DEFAULT: PasswordComplexitySettings = {
  minLength: 8,
  requiresUppercase: true,
  requiresLowercase: true,
  requiresNumber: true,
  requiresSymbol: true,
};

describe('brokenRules', () => {
  it('names every rule a password breaks, in Zitadel’s order', () => {
    expect(brokenRules('abc', DEFAULT)).toEqual([
      'must be at least 8 characters long',
      'must contain an upper-case letter',
      'must contain a digit',
      'must contain a symbol',
    ]);
    expect(brokenRules('Correct-Horse-9', DEFAULT)).toEqual([]);
  });

  it('applies only the rules the policy switches on', () => {
    const lenient = { ...DEFAULT, requiresSymbol: false, requiresNumber: false, requiresUppercase: false };
    expect(brokenRules('lowercaseonly', lenient)).toEqual([]);
    expect(brokenRules('UPPERCASE', lenient)).toEqual(['must contain a lower-case letter']);
  });

  it('counts the length in bytes, as Zitadel does', () => {
    // Seven characters, nine bytes.
    expect(brokenRules('Äb1-cdé', DEFAULT)).toEqual([]);
  });
});

describe('PasswordPolicyService', () => {
  it('answers 422 naming the field and each broken rule, and reads Zitadel’s policy once a minute', async () => {
    const getPasswordComplexitySettings = jest.fn(() => Promise.resolve({ ...DEFAULT, minLength: 12 }));
    const service = new PasswordPolicyService({ getPasswordComplexitySettings } as unknown as ZitadelClient);
    const error = await service.assertAcceptable('new_password', 'Short-pw-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).fieldErrors).toEqual([
      { field: 'new_password', message: 'new_password must be at least 12 characters long' },
    ]);
    const weaker = await service.assertAcceptable('new_password', 'short').catch((e: unknown) => e);
    expect((weaker as ApiError).fieldErrors).toEqual([
      {
        field: 'new_password',
        message:
          'new_password must be at least 12 characters long; must contain an upper-case letter; ' +
          'must contain a digit; must contain a symbol',
      },
    ]);
    await service.assertAcceptable('new_password', 'Long-enough-pw-1');
    expect(getPasswordComplexitySettings).toHaveBeenCalledTimes(1);
  });

  it('does not remember a failed read', async () => {
    const getPasswordComplexitySettings = jest
      .fn<() => Promise<PasswordComplexitySettings>>()
      .mockRejectedValueOnce(new Error('down'))
      .mockResolvedValue(DEFAULT);
    const service = new PasswordPolicyService({ getPasswordComplexitySettings } as unknown as ZitadelClient);
    await expect(service.policy()).rejects.toThrow('down');
    await expect(service.policy()).resolves.toEqual(DEFAULT);
  });
});
