/* deadline.c: monotonic deadlines, so a wall-clock step at boot (NTP catching up) never
 * shortens or stretches a wait. */
#include "kb/deadline.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t deadline_after_ms(int64_t ms)
{
	int64_t now = deadline_now_ms();

	if (ms < 0 || ms > DEADLINE_NEVER - now)
		return DEADLINE_NEVER;
	return now + ms;
}

int64_t deadline_remaining_ms(int64_t deadline)
{
	int64_t now;

	if (deadline == DEADLINE_NEVER)
		return INT64_MAX;
	now = deadline_now_ms();
	return deadline > now ? deadline - now : 0;
}

bool deadline_passed(int64_t deadline)
{
	return deadline_remaining_ms(deadline) == 0;
}

int64_t deadline_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

bool deadline_sleep_ms(int64_t deadline, int64_t ms)
{
	int64_t left = deadline_remaining_ms(deadline);
	struct timespec ts;

	if (ms > left)
		ms = left;
	if (ms > 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return !deadline_passed(deadline);
}

int64_t deadline_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void deadline_format_wall(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(wall_ms % 1000));
}
