import type { User } from './entities/user.entity.js';

/**
 * Where this service serves a user's avatar (`GET /api/users/:id/avatar`): the upload, or else a
 * generated image, so the URL always answers an image.
 */
export function uploadedAvatarUrl(userId: string): string {
  return `/api/users/${userId}/avatar`;
}

/**
 * The profile's `avatar_url`, never null: an external picture (set with PUT, or the identity provider's)
 * as it is, since this service never redirects to other hosts; otherwise this service's avatar URL.
 */
export function avatarUrlOf(user: Pick<User, 'id' | 'avatarUrl'>): string {
  return user.avatarUrl ?? uploadedAvatarUrl(user.id);
}
