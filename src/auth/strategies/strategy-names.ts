import passport, { type Strategy } from 'passport';

export const STRATEGY_NAMES = Symbol('STRATEGY_NAMES');

export interface StrategyNames {
  session: string;
  zitadel: string;
  /** Zitadel's opaque access tokens, by introspection. */
  introspection: string;
}

let applications = 0;

/**
 * Passport keeps strategies in one registry per process, by name. Each application registers its own
 * under names of its own, so that several applications in one process (the tests, the multi-instance
 * test) never authenticate with another one's strategies, nor with those of one already closed.
 */
export function newStrategyNames(): StrategyNames {
  const n = ++applications;
  return {
    session: `session-token-${n}`,
    zitadel: `zitadel-access-token-${n}`,
    introspection: `zitadel-opaque-token-${n}`,
  };
}

/**
 * Registers a strategy under its application's name instead of the generic one passport-jwt gives every
 * instance (`jwt`), which the PassportStrategy mixin registers it under first.
 */
export function registerAs(name: string, strategy: Strategy): void {
  // Nothing authenticates by the generic name; every application's strategies pass through it.
  if (strategy.name) passport.unuse(strategy.name);
  passport.use(name, strategy);
}

/** When the application closes: its strategies hold its closed database pool. */
export function unregister(name: string): void {
  passport.unuse(name);
}
