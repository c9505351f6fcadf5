/* floor.c: the least any boot of kafka-bootstrap costs on this machine, for bench/boot.
 *
 * Linked with exactly the agent's libraries, it does only what no boot can skip and prints,
 * after each step, its CPU time and peak RSS: libcurl initialised; one HTTPS POST to EC2 with
 * the trust store of AWS_CA_BUNDLE (through the agent's http.c and trust.c), its XML answer
 * parsed (xml.c); one libblkid probe of a blank device (blockdev.c). What the agent uses above
 * these figures is its own; below them nothing can go without other libraries.
 *
 *     floor post <https-url> [probe <blank block device>]
 *
 * Never writes to the device (the probe opens it read-only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "kb/blockdev.h"
#include "kb/deadline.h"
#include "kb/http.h"
#include "kb/xml.h"

static void report(const char *step)
{
	FILE *f = fopen("/proc/self/status", "r");
	struct timespec cpu;
	char line[256];
	long hwm = 0;

	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "VmHWM: %ld", &hwm);
	if (f)
		fclose(f);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	printf("{\"step\": \"%s\", \"cpu_ms\": %.2f, \"peak_rss_kb\": %ld}\n", step,
	       (double)cpu.tv_sec * 1e3 + (double)cpu.tv_nsec / 1e6, hwm);
	fflush(stdout);
}

static int post(const char *url)
{
	static const char body[] = "Action=DescribeVolumes&Version=2016-11-15";
	struct http_options opts = {.ca_bundle = getenv("AWS_CA_BUNDLE"), .timeout_ms = 10000};
	struct http_request req = {.method = "POST", .path = "/", .body = body,
				   .body_len = sizeof(body) - 1};
	struct http_response resp = {0};
	struct kb_error err = {{0}};
	struct http_client *c = http_client_new(url, &opts, &err);
	xmlDoc *doc = NULL;
	int ret = c ? http_send(c, &req, deadline_after_ms(10000), &resp, &err) : -1;

	/* Unsigned, so EC2 answers with an error document: parsed all the same. */
	if (ret == 0) {
		report("https_post");
		ret = xml_read(resp.body, resp.body_len, &doc, &err);
	}
	if (ret == 0)
		report("xml_parsed");
	else
		fprintf(stderr, "floor: %s\n", err.msg);
	xmlFreeDoc(doc);
	http_response_clear(&resp);
	http_client_free(c);
	return ret;
}

static int probe(const char *device)
{
	struct blockdev_probe p = {0};
	struct kb_error err = {{0}};
	int ret = blockdev_probe(device, 0, &p, &err);

	if (ret == 0 && p.content != BLOCKDEV_BLANK)
		ret = -1;
	if (ret == 0)
		report("blank_probe");
	else
		fprintf(stderr, "floor: %s: %s\n", device, err.msg[0] ? err.msg : "not blank");
	blockdev_probe_clear(&p);
	return ret;
}

int main(int argc, char **argv)
{
	if ((argc != 3 && argc != 5) || strcmp(argv[1], "post") != 0 ||
	    (argc == 5 && strcmp(argv[3], "probe") != 0)) {
		fprintf(stderr, "usage: floor post <https-url> [probe <blank block device>]\n");
		return 64;
	}
	report("main");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 70;
	report("curl_global_init");
	if (post(argv[2]) < 0 || (argc == 5 && probe(argv[4]) < 0))
		return 1;
	curl_global_cleanup();
	return 0;
}
