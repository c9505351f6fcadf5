/* skewed_clock.c: an LD_PRELOAD shim that moves CLOCK_REALTIME (and time(), gettimeofday())
 * by KB_TEST_CLOCK_OFFSET_S seconds, as a booting instance's clock is before NTP catches up.
 * The monotonic clocks stay as they are. Test-only: tests/harness/skewed_clock.py builds it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long offset_s(void)
{
	const char *text = getenv("KB_TEST_CLOCK_OFFSET_S");

	return text ? strtoll(text, NULL, 10) : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	int ret;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	ret = real(id, ts);
	if (ret == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += (time_t)offset_s();
	return ret;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	static int (*real)(struct timeval *restrict, void *restrict);
	int ret;

	if (!real)
		real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT,
										"gettimeofday");
	ret = real(tv, tz);
	if (ret == 0)
		tv->tv_sec += (time_t)offset_s();
	return ret;
}

time_t time(time_t *out)
{
	struct timespec ts;
	time_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec;
	if (out)
		*out = now;
	return now;
}
