import { ApiProperty } from '@nestjs/swagger';

export class AvatarUpdatedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['updated'] })
  status!: 'updated';

  @ApiProperty({ example: '/api/users/0b7c1f9e-3f7a-4c8e-9d1a-5e2f4a6b8c0d/avatar' })
  avatar_url!: string;
}
