import type { LoginSettings as ProtoLoginSettings } from '@zitadel/proto/zitadel/settings/v2/login_settings_pb.js';
import type { PasswordComplexity } from './credentials.js';
import type { EventDispatcher } from './events.js';
import type { TokenSigner } from './keys.js';
import type { Store } from './store.js';

export interface ClientConfig {
  clientId: string;
  clientSecret?: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
}

/** The parts of Zitadel's login policy dev-idp simulates (settings v2 LoginSettings). */
export type LoginSettings = Pick<
  ProtoLoginSettings,
  'allowUsernamePassword' | 'forceMfa' | 'forceMfaLocalOnly'
>;

export interface Logger {
  log(msg: string): void;
  warn(msg: string): void;
}

/** What every route module needs; built once by startDevIdentityProvider. */
export interface IdpContext {
  store: Store;
  signer: TokenSigner;
  /** Known only once the server listens when the port is OS-assigned, hence a function. */
  issuer(): string;
  orgId: string;
  orgDomain: string;
  projectId: string;
  projectName: string;
  clients: Map<string, ClientConfig>;
  serviceAccountToken: string;
  emailCodeSink?: (userId: string, email: string, code: string) => void;
  /** Where password-reset codes go instead of the log (tests read them from here or lastPasswordCode). */
  passwordCodeSink?: (userId: string, email: string, code: string) => void;
  logger: Logger;
  /** Actions v2 webhook events to the configured target (none until one is set). */
  events: EventDispatcher;
  /** The login policy; per running instance, in memory (setLoginSettings changes it). */
  loginSettings: LoginSettings;
  /** The password complexity policy; per running instance, in memory (setPasswordComplexity changes it). */
  passwordComplexity: PasswordComplexity;
}
