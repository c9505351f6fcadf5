/* discover.c: the broker ids this instance may claim: those whose ENI (and volume, when
 * volumes are managed) carry <tag_key>=<tag_prefix><id> in this instance's AZ and cluster.
 *
 * One DescribeNetworkInterfaces and one DescribeVolumes, filtered by EC2; the filters are
 * checked again here, because an ENI in another AZ can never be attached and a tag like
 * "KAFKA-07" or "KAFKA-7b" must not become id 7. Two resources tagged with one id is a broken
 * account, never resolved by picking one, and confined to that id: it is marked ambiguous
 * (offered to no new claim; the eni or volume stage of an instance that holds it refuses,
 * naming them all), and every other id of the AZ boots as usual. Read only, in every mode. */
#include "kb/discover.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/claim.h"
#include "kb/ec2.h"
#include "kb/log.h"
#include "kb/stages.h"

/* An ENI or a volume, as far as tags go. */
struct tagged {
	const char *kind;  /* "ENI", "volume" */
	const char *stage; /* the one that refuses an id tagged twice: "eni", "volume" */
	const char *id;
	const char *az;
	const struct ec2_tag *tags;
	size_t tag_count;
	size_t index; /* in its list */
	int broker_id;
};

static int by_broker_id(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;

	return (x->broker_id > y->broker_id) - (x->broker_id < y->broker_id);
}

/* A tagged resource that is no candidate: a warning, and a note for the error of an AZ left
 * with no candidate at all ("; " between notes). */
__attribute__((format(printf, 2, 3))) static void not_candidate(FILE *notes, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (!text)
		return;
	log_warn("discover: %s", text);
	if (notes)
		fprintf(notes, "%s%s", ftell(notes) > 0 ? "; " : "", text);
	free(text);
}

/* The broker id r is tagged with; false (with a note) when r does not qualify. */
static bool tagged_id(const struct kb_config *cfg, const char *az, struct tagged *r,
		      FILE *notes)
{
	const char *value = ec2_tag_value(r->tags, r->tag_count, cfg->tag_key);
	size_t prefix = strlen(cfg->tag_prefix);
	int ret;

	if (!value || strncmp(value, cfg->tag_prefix, prefix) != 0)
		return false;
	if (!r->az || strcmp(r->az, az) != 0) {
		not_candidate(notes, "ignoring %s %s: it is in %s, this instance in %s", r->kind,
			      r->id, r->az ? r->az : "no AZ", az);
		return false;
	}
	if (cfg->cluster[0]) {
		const char *cluster = ec2_tag_value(r->tags, r->tag_count, cfg->cluster_tag_key);

		if (!cluster || strcmp(cluster, cfg->cluster) != 0) {
			not_candidate(notes, "ignoring %s %s: its tag %s is '%s', not cluster '%s'",
				      r->kind, r->id, cfg->cluster_tag_key, cluster ? cluster : "",
				      cfg->cluster);
			return false;
		}
	}
	ret = claim_parse_id(value + prefix, strlen(value + prefix), cfg->broker_count,
			     &r->broker_id);
	if (ret == -ERANGE)
		not_candidate(notes, "ignoring %s %s: %s=%s is beyond broker_count %d", r->kind,
			      r->id, cfg->tag_key, value, cfg->broker_count);
	else if (ret < 0)
		not_candidate(notes, "ignoring %s %s: %s=%s is not %s<id> (a decimal id without "
			      "leading zeros)", r->kind, r->id, cfg->tag_key, value, cfg->tag_prefix);
	return ret == 0;
}

/* Keeps the qualifying resources, sorted by id; two with one id are reported, not chosen
 * between. */
static void qualify(const struct kb_config *cfg, const char *az, struct tagged *r, size_t *n,
		    FILE *notes)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n; i++) {
		if (tagged_id(cfg, az, &r[i], notes))
			r[kept++] = r[i];
	}
	*n = kept;
	qsort(r, kept, sizeof(*r), by_broker_id);
	for (size_t i = 1; i < kept; i++) {
		if (r[i].broker_id == r[i - 1].broker_id)
			log_warn("discover: %ss %s and %s are both tagged %s=%s%d in %s: broker id "
				 "%d is offered to no new claim, and an instance that holds it stops "
				 "in its %s stage (retag or delete one)", r[i].kind, r[i - 1].id,
				 r[i].id, cfg->tag_key, cfg->tag_prefix, r[i].broker_id, az,
				 r[i].broker_id, r[i].stage);
	}
}

/* How many resources from r[i] on share its id. */
static size_t same_id(const struct tagged *r, size_t n, size_t i)
{
	size_t k = i + 1;

	while (k < n && r[k].broker_id == r[i].broker_id)
		k++;
	return k - i;
}

static struct tagged *eni_view(const struct ec2_eni_list *list, size_t *n)
{
	struct tagged *r = calloc(list && list->count ? list->count : 1, sizeof(*r));

	*n = 0;
	for (size_t i = 0; r && list && i < list->count; i++) {
		const struct ec2_eni *e = &list->items[i];

		r[(*n)++] = (struct tagged){"ENI", "eni", e->id, e->az, e->tags, e->tag_count, i,
					    -1};
	}
	return r;
}

static struct tagged *volume_view(const struct ec2_volume_list *list, size_t *n)
{
	struct tagged *r = calloc(list && list->count ? list->count : 1, sizeof(*r));

	*n = 0;
	for (size_t i = 0; r && list && i < list->count; i++) {
		const struct ec2_volume *v = &list->items[i];

		r[(*n)++] = (struct tagged){"volume", "volume", v->id, v->az, v->tags,
					    v->tag_count, i, -1};
	}
	return r;
}

int discover_tag_id(const struct kb_config *cfg, const struct ec2_tag *tags, size_t tag_count)
{
	const char *value = ec2_tag_value(tags, tag_count, cfg->tag_key);
	size_t prefix = strlen(cfg->tag_prefix);
	int id;

	if (!value || strncmp(value, cfg->tag_prefix, prefix) != 0 ||
	    claim_parse_id(value + prefix, strlen(value + prefix), cfg->broker_count, &id) < 0)
		return -1;
	return id;
}

int discover_candidates(const struct kb_config *cfg, const char *az,
			const struct ec2_eni_list *enis, const struct ec2_volume_list *volumes,
			struct kb_broker **out, size_t *count, FILE *notes, struct kb_error *err)
{
	size_t ne = 0, nv = 0, v = 0, group = 1;
	struct tagged *e = eni_view(enis, &ne);
	struct tagged *vol = cfg->manage_volume ? volume_view(volumes, &nv) : NULL;
	struct kb_broker *cands = NULL;
	int ret = 0;

	*out = NULL;
	*count = 0;
	if (!e || (cfg->manage_volume && !vol) || !(cands = calloc(ne + 1, sizeof(*cands)))) {
		ret = kb_errorf(err, ENOMEM, "discover: out of memory");
		goto out;
	}
	qualify(cfg, az, e, &ne, notes);
	if (vol)
		qualify(cfg, az, vol, &nv, notes);
	/* Both lists are sorted by id: walk them side by side, past the last ENI too. */
	for (size_t i = 0; i <= ne; i += group) {
		struct kb_broker *b = &cands[*count];

		while (vol && v < nv && (i == ne || vol[v].broker_id < e[i].broker_id)) {
			not_candidate(notes, "volume %s is tagged %s%d, but no ENI in %s is",
				      vol[v].id, cfg->tag_prefix, vol[v].broker_id, az);
			v++;
		}
		if (i == ne)
			break;
		group = same_id(e, ne, i);
		b->id = e[i].broker_id;
		b->eni = &enis->items[e[i].index];
		b->ambiguous = group > 1;
		if (vol) {
			if (v >= nv || vol[v].broker_id != b->id) {
				not_candidate(notes, "ENI %s is tagged %s%d, but no volume in %s is",
					      e[i].id, cfg->tag_prefix, b->id, az);
				continue;
			}
			b->volume = &volumes->items[vol[v].index];
			b->ambiguous |= same_id(vol, nv, v) > 1;
			v += same_id(vol, nv, v);
		}
		(*count)++;
	}
	*out = cands;
	cands = NULL;
out:
	free(cands);
	free(e);
	free(vol);
	return ret;
}

static int describe(struct kb_run *run)
{
	const struct kb_config *cfg = run->cfg;
	char *tag_filter = NULL, *pattern = NULL, *cluster_filter = NULL;
	const char *pattern_v[1], *az_v[1] = {run->identity.az}, *cluster_v[1] = {cfg->cluster};
	struct ec2_filter filters[3];
	size_t n = 2;
	int ret;

	if (asprintf(&tag_filter, "tag:%s", cfg->tag_key) < 0)
		tag_filter = NULL;
	if (asprintf(&pattern, "%s*", cfg->tag_prefix) < 0)
		pattern = NULL;
	if (asprintf(&cluster_filter, "tag:%s", cfg->cluster_tag_key) < 0)
		cluster_filter = NULL;
	if (!tag_filter || !pattern || !cluster_filter) {
		ret = kb_errorf(&run->err, ENOMEM, "discover: out of memory");
		goto out;
	}
	pattern_v[0] = pattern;
	filters[0] = (struct ec2_filter){tag_filter, pattern_v, 1};
	filters[1] = (struct ec2_filter){"availability-zone", az_v, 1};
	if (cfg->cluster[0])
		filters[n++] = (struct ec2_filter){cluster_filter, cluster_v, 1};
	ret = ec2_describe_network_interfaces(run->aws, filters, n, run->stage_deadline,
					      &run->enis, &run->err);
	if (ret == 0 && cfg->manage_volume)
		ret = ec2_describe_volumes(run->aws, filters, n, run->stage_deadline, &run->volumes,
					   &run->err);
out:
	free(tag_filter);
	free(pattern);
	free(cluster_filter);
	return ret;
}

/* An AZ with no candidate fails here, before ZooKeeper is asked anything, with what was
 * found instead: an operator reads "volume vol-1 is tagged KAFKA-1, but no ENI in us-east-1b
 * is" and finds the ENI in another AZ. */
static int no_candidate(struct kb_run *run, const char *notes)
{
	const struct kb_config *cfg = run->cfg;

	if (notes && notes[0])
		return kb_errorf(&run->err, KB_ENOID, "no broker id available in %s: %s",
				 run->identity.az, notes);
	return kb_errorf(&run->err, KB_ENOID, "no broker id available in %s: no ENI tagged "
			 "%s=%s<id>%s%s%s there", run->identity.az, cfg->tag_key, cfg->tag_prefix,
			 cfg->cluster[0] ? " for cluster '" : "", cfg->cluster,
			 cfg->cluster[0] ? "'" : "");
}

int discover_stage(struct kb_run *run)
{
	char *ids = NULL, *notes = NULL;
	size_t len = 0, notes_len = 0;
	FILE *mem;
	int ret;

	if (!run->aws || !run->identity.az)
		return kb_errorf(&run->err, KB_EINTERNAL,
				 "discover needs the identity stage's AZ and AWS context");
	ret = describe(run);
	if (ret < 0)
		return ret;
	mem = open_memstream(&notes, &notes_len);
	ret = discover_candidates(run->cfg, run->identity.az, run->enis, run->volumes,
				  &run->candidates, &run->candidate_count, mem, &run->err);
	if (mem)
		fclose(mem);
	if (ret == 0 && run->candidate_count == 0)
		ret = no_candidate(run, notes);
	free(notes);
	if (ret < 0)
		return ret;
	mem = open_memstream(&ids, &len);
	for (size_t i = 0; mem && i < run->candidate_count; i++)
		fprintf(mem, "%s%d", i ? "," : "", run->candidates[i].id);
	if (mem)
		fclose(mem);
	log_info("discover: %zu candidate id%s in %s%s%s: %s", run->candidate_count,
		 run->candidate_count == 1 ? "" : "s", run->identity.az,
		 run->cfg->cluster[0] ? ", cluster " : "", run->cfg->cluster,
		 ids && ids[0] ? ids : "none");
	free(ids);
	return 0;
}
