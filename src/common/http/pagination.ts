import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;
/**
 * A deep offset makes PostgreSQL walk and discard every row before the page (at a million users,
 * offset 900,000 took seconds and ended in 5xx under load), so offsets stop here, as search engines bound
 * their result windows; deeper pages are read with `cursor`, which costs what the first page does.
 */
export const MAX_OFFSET = 10_000;

/** `limit` and `offset` as the contract defines them: a limit above the maximum is refused, never clamped. */
export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit?: number;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: MAX_OFFSET,
    default: 0,
    description: `Rows to skip, at most ${MAX_OFFSET}; page deeper with \`cursor\` where the route has one`,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(MAX_OFFSET, {
    message: `offset must not be greater than ${MAX_OFFSET}; for deeper pages pass the previous page's next_cursor as cursor`,
  })
  offset?: number;
}
