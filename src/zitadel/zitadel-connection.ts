/** Where and how to reach Zitadel, resolved at start-up from configuration or the dev identity provider. */
export interface ZitadelConnection {
  /** Base URL, also the OIDC issuer, e.g. https://auth.example.com */
  url: string;
  orgId: string;
  projectId: string;
  clientId: string;
  clientSecret?: string;
  redirectUri: string;
  postLogoutRedirectUri?: string;
  /** Exactly one of these authenticates this service to Zitadel's API. */
  credentials: { pat: string } | { keyFile: string };
  /**
   * This service's API app in Zitadel (client id and secret), for RFC 7662 introspection of opaque access
   * tokens; without it, opaque tokens are refused.
   */
  introspection?: { clientId: string; clientSecret: string };
  timeoutMs: number;
  /** Extra attempts for idempotent calls (reads, and writes whose repeat is harmless). */
  retries: number;
  /** Consecutive failed exchanges that open the circuit, and how long it stays open (defaults in resilience.ts). */
  circuit?: { failureThreshold: number; resetMs: number };
}

export const ZITADEL_CONNECTION = Symbol('ZITADEL_CONNECTION');
