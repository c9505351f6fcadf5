/* test_discover.c: which ENIs and volumes become candidate broker ids. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kb/config.h"
#include "kb/discover.h"
#include "kb/ec2.h"

#define AZ "us-east-1a"

static struct ec2_tag tags[][2] = {
	{{"Name", "KAFKA-0"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-1"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-2"}, {"kafka-bootstrap:cluster", "green"}},
	{{"Name", "KAFKA-07"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-3x"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-4"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-5"}, {"kafka-bootstrap:cluster", "blue"}},
	{{"Name", "KAFKA-1"}, {"kafka-bootstrap:cluster", "blue"}},
};

static struct ec2_eni eni(const char *id, const char *az, int tag)
{
	return (struct ec2_eni){.id = (char *)id, .az = (char *)az, .tags = tags[tag],
				.tag_count = 2};
}

static struct ec2_volume vol(const char *id, const char *az, int tag)
{
	return (struct ec2_volume){.id = (char *)id, .az = (char *)az, .tags = tags[tag],
				   .tag_count = 2};
}

static struct kb_config *config(const char *cluster, bool manage_volume, int broker_count)
{
	struct kb_config *cfg = config_new();

	assert_non_null(cfg);
	free(cfg->cluster);
	cfg->cluster = strdup(cluster);
	cfg->manage_volume = manage_volume;
	cfg->broker_count = broker_count;
	return cfg;
}

/* discover_candidates, which must succeed: the candidates, *n of them. */
static struct kb_broker *discover(const struct kb_config *cfg, const struct ec2_eni_list *enis,
				  const struct ec2_volume_list *vols, size_t *n)
{
	struct kb_error err = {{0}};
	struct kb_broker *out = NULL;

	assert_int_equal(discover_candidates(cfg, AZ, enis, vols, &out, n, NULL, &err), 0);
	return out;
}

static void only_well_tagged_enis_of_this_az_and_cluster_are_candidates(void **state)
{
	struct ec2_eni e[] = {
		eni("eni-0", AZ, 0), eni("eni-1", AZ, 1), eni("eni-2", AZ, 2),
		eni("eni-07", AZ, 3), eni("eni-3x", AZ, 4), eni("eni-4", "us-east-1b", 5),
		eni("eni-5", AZ, 6),
	};
	struct ec2_eni_list enis = {e, sizeof(e) / sizeof(e[0])};
	struct kb_config *cfg = config("blue", false, 0);
	struct kb_error err = {{0}};
	struct kb_broker *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(discover_candidates(cfg, AZ, &enis, NULL, &out, &n, NULL, &err), 0);
	/* green's 2, "07", "3x" and the other AZ's 4 are not candidates */
	assert_int_equal(n, 3);
	assert_int_equal(out[0].id, 0);
	assert_string_equal(out[0].eni->id, "eni-0");
	assert_int_equal(out[1].id, 1);
	assert_int_equal(out[2].id, 5);
	assert_null(out[2].volume);
	free(out);
	config_free(cfg);
}

static void broker_count_bounds_the_ids(void **state)
{
	struct ec2_eni e[] = {eni("eni-5", AZ, 6), eni("eni-1", AZ, 1), eni("eni-0", AZ, 0)};
	struct ec2_eni_list enis = {e, 3};
	struct kb_config *cfg = config("", false, 5);
	struct kb_error err = {{0}};
	struct kb_broker *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(discover_candidates(cfg, AZ, &enis, NULL, &out, &n, NULL, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].id, 0);
	assert_int_equal(out[1].id, 1);
	free(out);
	config_free(cfg);
}

static void with_volumes_an_id_needs_both_its_eni_and_its_volume(void **state)
{
	struct ec2_eni e[] = {eni("eni-0", AZ, 0), eni("eni-1", AZ, 1), eni("eni-5", AZ, 6)};
	struct ec2_volume v[] = {vol("vol-5", AZ, 6), vol("vol-4", AZ, 5),
				 vol("vol-1", "us-east-1b", 1), vol("vol-0", AZ, 0)};
	struct ec2_eni_list enis = {e, 3};
	struct ec2_volume_list vols = {v, 4};
	struct kb_config *cfg = config("", true, 0);
	struct kb_broker *out;
	size_t n = 0;

	(void)state;
	out = discover(cfg, &enis, &vols, &n);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].id, 0);
	assert_string_equal(out[0].volume->id, "vol-0");
	assert_int_equal(out[1].id, 5);
	assert_string_equal(out[1].volume->id, "vol-5");
	free(out);
	config_free(cfg);
}

static void an_id_on_two_enis_is_marked_ambiguous_and_the_other_ids_stay_candidates(void **state)
{
	struct ec2_eni e[] = {eni("eni-a", AZ, 1), eni("eni-0", AZ, 0), eni("eni-b", AZ, 7),
			      eni("eni-5", AZ, 6)};
	struct ec2_eni_list enis = {e, 4};
	struct kb_config *cfg = config("blue", false, 0);
	struct kb_broker *out;
	size_t n = 0;

	(void)state;
	out = discover(cfg, &enis, NULL, &n);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].id, 0);
	assert_false(out[0].ambiguous);
	/* Kept, so that the instance holding id 1 is refused by its eni stage, by name. */
	assert_int_equal(out[1].id, 1);
	assert_true(out[1].ambiguous);
	assert_int_equal(out[2].id, 5);
	assert_false(out[2].ambiguous);
	assert_string_equal(out[2].eni->id, "eni-5");
	free(out);
	config_free(cfg);
}

static void an_id_on_two_volumes_is_marked_ambiguous_and_the_other_ids_stay_candidates(
	void **state)
{
	struct ec2_eni e[] = {eni("eni-0", AZ, 0), eni("eni-1", AZ, 1), eni("eni-5", AZ, 6)};
	/* A snapshot of broker 5's volume restored with its tags. */
	struct ec2_volume v[] = {vol("vol-5", AZ, 6), vol("vol-1", AZ, 1), vol("vol-5copy", AZ, 6),
				 vol("vol-0", AZ, 0)};
	struct ec2_eni_list enis = {e, 3};
	struct ec2_volume_list vols = {v, 4};
	struct kb_config *cfg = config("", true, 0);
	struct kb_broker *out;
	size_t n = 0;

	(void)state;
	out = discover(cfg, &enis, &vols, &n);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].id, 0);
	assert_string_equal(out[0].volume->id, "vol-0");
	assert_false(out[0].ambiguous);
	assert_int_equal(out[1].id, 1);
	assert_string_equal(out[1].volume->id, "vol-1");
	assert_false(out[1].ambiguous);
	assert_int_equal(out[2].id, 5);
	assert_true(out[2].ambiguous);
	free(out);
	config_free(cfg);
}

static void the_tag_id_is_the_canonical_one_discover_reads(void **state)
{
	struct kb_config *cfg = config("", false, 6);

	(void)state;
	assert_int_equal(discover_tag_id(cfg, tags[6], 2), 5);
	assert_int_equal(discover_tag_id(cfg, tags[3], 2), -1); /* KAFKA-07 */
	assert_int_equal(discover_tag_id(cfg, tags[4], 2), -1); /* KAFKA-3x */
	assert_int_equal(discover_tag_id(cfg, tags[0], 1), 0);
	assert_int_equal(discover_tag_id(cfg, tags[0] + 1, 1), -1); /* no Name tag */
	cfg->broker_count = 5;
	assert_int_equal(discover_tag_id(cfg, tags[6], 2), -1);
	config_free(cfg);
}

static void no_eni_at_all_is_no_candidate_not_an_error(void **state)
{
	struct kb_config *cfg = config("", true, 0);
	struct ec2_eni_list enis = {NULL, 0};
	struct kb_error err = {{0}};
	struct kb_broker *out = NULL;
	size_t n = 7;

	(void)state;
	assert_int_equal(discover_candidates(cfg, AZ, &enis, NULL, &out, &n, NULL, &err), 0);
	assert_int_equal(n, 0);
	free(out);
	config_free(cfg);
}

static void every_id_left_out_is_named_in_the_notes(void **state)
{
	/* KAFKA-1's volume is elsewhere; KAFKA-5's volume sorts after the last ENI. */
	struct ec2_eni e[] = {eni("eni-1", AZ, 1), eni("eni-0", AZ, 0)};
	struct ec2_volume v[] = {vol("vol-5", AZ, 6), vol("vol-1", "us-east-1b", 1),
				 vol("vol-0", AZ, 0)};
	struct ec2_eni_list enis = {e, 2};
	struct ec2_volume_list vols = {v, 3};
	struct kb_config *cfg = config("", true, 0);
	struct kb_error err = {{0}};
	struct kb_broker *out = NULL;
	char *notes = NULL;
	size_t len = 0, n = 0;
	FILE *mem = open_memstream(&notes, &len);

	(void)state;
	assert_non_null(mem);
	assert_int_equal(discover_candidates(cfg, AZ, &enis, &vols, &out, &n, mem, &err), 0);
	fclose(mem);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].id, 0);
	assert_string_equal(notes, "ignoring volume vol-1: it is in us-east-1b, this instance in "
				   "us-east-1a; ENI eni-1 is tagged KAFKA-1, but no volume in "
				   "us-east-1a is; volume vol-5 is tagged KAFKA-5, but no ENI in "
				   "us-east-1a is");
	free(notes);
	free(out);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(only_well_tagged_enis_of_this_az_and_cluster_are_candidates),
		cmocka_unit_test(broker_count_bounds_the_ids),
		cmocka_unit_test(with_volumes_an_id_needs_both_its_eni_and_its_volume),
		cmocka_unit_test(an_id_on_two_enis_is_marked_ambiguous_and_the_other_ids_stay_candidates),
		cmocka_unit_test(
			an_id_on_two_volumes_is_marked_ambiguous_and_the_other_ids_stay_candidates),
		cmocka_unit_test(the_tag_id_is_the_canonical_one_discover_reads),
		cmocka_unit_test(no_eni_at_all_is_no_candidate_not_an_error),
		cmocka_unit_test(every_id_left_out_is_named_in_the_notes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
