/* netlink_kill.c: an LD_PRELOAD shim that SIGKILLs its process right after the first
 * rtnetlink request of type KB_TEST_KILL_NETLINK_TYPE (RTM_NEWADDR is 20, ...) was handed to
 * the kernel: rtnetlink carries a request out inside sendto(), so the change is made and the
 * process never reads the acknowledgement, as if killed between two changes of one run.
 * Test-only: tests/harness/netlink_kill.py builds it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int is_netlink(int fd)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	return getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
	       addr.ss_family == AF_NETLINK;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
	       socklen_t to_len)
{
	static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *,
			       socklen_t);
	const char *type = getenv("KB_TEST_KILL_NETLINK_TYPE");
	const struct nlmsghdr *nlh = buf;
	ssize_t ret;

	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *,
				    socklen_t))dlsym(RTLD_NEXT, "sendto");
	ret = real(fd, buf, len, flags, to, to_len);
	if (ret >= 0 && type && len >= sizeof(*nlh) && nlh->nlmsg_type == atoi(type) &&
	    is_netlink(fd))
		kill(getpid(), SIGKILL);
	return ret;
}
