import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One pending OIDC login: what the callback needs to finish it. Deleted when the callback consumes it,
 * so a `state` works exactly once; kept in PostgreSQL so any instance can complete any login.
 */
@Entity('oidc_login_states')
export class OidcLoginState {
  /** The random `state` parameter sent to the identity provider. */
  @PrimaryColumn({ type: 'varchar', length: 64 })
  state!: string;

  /** PKCE verifier; only its S256 hash ever leaves the service. */
  @Column({ name: 'code_verifier', type: 'varchar', length: 128 })
  codeVerifier!: string;

  @Column({ type: 'varchar', length: 64 })
  nonce!: string;

  @Column({ name: 'remember_me', type: 'boolean', default: false })
  rememberMe!: boolean;

  /** The bot the login was started for (`bot_id` of the login request); the session records it. */
  @Column({ name: 'bot_id', type: 'varchar', length: 64, nullable: true })
  botId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Index('oidc_login_states_expires_idx')
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
