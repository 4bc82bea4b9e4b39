import { InitialSchema1795541909458 } from './1795541909458-InitialSchema.js';
import { LoginSessions1795542567647 } from './1795542567647-LoginSessions.js';
import { AuditTrail1795625000000 } from './1795625000000-AuditTrail.js';
import { UserAvatars1795620000000 } from './1795620000000-UserAvatars.js';
import { ZitadelEventCursors1795630000000 } from './1795630000000-ZitadelEventCursors.js';
import { UserCounts1795635000000 } from './1795635000000-UserCounts.js';
import { UserSearchText1795640000000 } from './1795640000000-UserSearchText.js';
import { UserWriteLease1795650000000 } from './1795650000000-UserWriteLease.js';
import { OidcLoginBot1795651000000 } from './1795651000000-OidcLoginBot.js';
import { ChangeNotifications1795660000000 } from './1795660000000-ChangeNotifications.js';
import { Organizations1795670000000 } from './1795670000000-Organizations.js';
import { PendingEmail1795671000000 } from './1795671000000-PendingEmail.js';
import { SearchCountIndex1795680000000 } from './1795680000000-SearchCountIndex.js';

/**
 * Every migration, in order. `npm run migration:generate -- src/database/migrations/Name` writes a new
 * file next to this one; add its class here (the drift test fails until you do).
 */
export const MIGRATIONS = [
  InitialSchema1795541909458,
  LoginSessions1795542567647,
  UserAvatars1795620000000,
  AuditTrail1795625000000,
  ZitadelEventCursors1795630000000,
  UserCounts1795635000000,
  UserSearchText1795640000000,
  UserWriteLease1795650000000,
  OidcLoginBot1795651000000,
  ChangeNotifications1795660000000,
  Organizations1795670000000,
  PendingEmail1795671000000,
  SearchCountIndex1795680000000,
];
