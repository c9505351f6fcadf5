/* deadline.h: absolute deadlines on the monotonic clock, in milliseconds.
 *
 * Every wait and every network call takes an absolute deadline rather than a timeout, so a
 * stage's budget is spent once however many calls and retries it makes. */
#ifndef KB_DEADLINE_H
#define KB_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEADLINE_NEVER INT64_MAX

int64_t deadline_now_ms(void);
/* now + ms; DEADLINE_NEVER for ms < 0. */
int64_t deadline_after_ms(int64_t ms);
/* Milliseconds left, 0 when passed, INT64_MAX for DEADLINE_NEVER. */
int64_t deadline_remaining_ms(int64_t deadline);
bool deadline_passed(int64_t deadline);
int64_t deadline_min(int64_t a, int64_t b);
/* Sleeps min(ms, remaining); returns false when the deadline has passed on return. */
bool deadline_sleep_ms(int64_t deadline, int64_t ms);
/* Wall clock, milliseconds since the epoch (for records, never for deadlines). */
int64_t deadline_wall_ms(void);
/* "2025-01-15T12:00:01.123Z" into buf (at least 25 bytes). */
void deadline_format_wall(int64_t wall_ms, char *buf, size_t len);

#endif
