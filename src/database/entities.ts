import { AuditEvent } from '../audit/entities/audit-event.entity.js';
import { OidcLoginState } from '../auth/entities/oidc-login-state.entity.js';
import { Session } from '../sessions/entities/session.entity.js';
import { UserSetting } from '../settings/entities/user-setting.entity.js';
import { UserAvatar } from '../users/avatars/entities/user-avatar.entity.js';
import { UserBotRole } from '../users/entities/user-bot-role.entity.js';
import { User } from '../users/entities/user.entity.js';
import { ZitadelEventCursor } from '../zitadel-sync/entities/zitadel-event-cursor.entity.js';

/** Every entity, listed explicitly: ESM and bundling make glob discovery fragile. */
export const ENTITIES = [
  User,
  UserSetting,
  Session,
  OidcLoginState,
  AuditEvent,
  UserAvatar,
  ZitadelEventCursor,
  UserBotRole,
];
