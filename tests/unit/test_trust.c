/* trust: a bundle read once and decoded on demand trusts exactly what OpenSSL's own loader
 * trusts. Every certificate of the system bundle verifies (or not) with the same result and
 * error through both stores; a leaf signed by CAs appended to the bundle verifies and only
 * those CAs get decoded; without them it does not; anything but plain certificates is left
 * to OpenSSL's loader; a path is read once per process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "kb/trust.h"
#include "scratch.h"

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return scratch_dir_new(dir, sizeof(dir), "trust-test");
}

static int teardown(void **state)
{
	(void)state;
	return scratch_dir_remove(dir);
}

static char *path_in_dir(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* A certificate for cn, signed by issuer (self-signed when NULL); version 1 has no
 * extensions, version 3 a CA basicConstraints when ca. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		       int version, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	assert_true(X509_set_version(x, version - 1));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0xffffff)));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					       (const unsigned char *)"kb trust test", -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					       (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name));
	assert_true(X509_set_pubkey(x, key));
	if (version == 3) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(
			NULL, NULL, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");

		assert_non_null(ext);
		assert_true(X509_add_ext(x, ext, -1));
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()));
	X509_NAME_free(name);
	return x;
}

static void copy_file(const char *from, FILE *to)
{
	FILE *in = fopen(from, "r");
	char buf[4096];
	size_t n;

	assert_non_null(in);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, to), n);
	fclose(in);
}

/* The system bundle followed by the given certificates. */
static char *bundle_with(const char *name, X509 **certs, size_t n)
{
	char *path = path_in_dir(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	copy_file(SYSTEM_BUNDLE, f);
	for (size_t i = 0; i < n; i++)
		assert_true(PEM_write_X509(f, certs[i]));
	assert_int_equal(fclose(f), 0);
	return path;
}

static X509_STORE *lazy_store(struct trust_bundle *b)
{
	X509_STORE *store = X509_STORE_new();

	assert_non_null(store);
	assert_int_equal(trust_bundle_attach(b, store), 0);
	return store;
}

static X509_STORE *eager_store(const char *path)
{
	X509_STORE *store = X509_STORE_new();

	assert_non_null(store);
	assert_true(X509_STORE_load_file(store, path));
	return store;
}

/* X509_V_OK or the verification error of leaf against store, with libcurl's flags. */
static int verify(X509_STORE *store, X509 *leaf, STACK_OF(X509) *untrusted)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int result;

	assert_non_null(ctx);
	assert_true(X509_STORE_CTX_init(ctx, store, leaf, untrusted));
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
	result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	return result;
}

static size_t count_begin_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strcmp(line, "-----BEGIN CERTIFICATE-----\n") == 0;
	fclose(f);
	return n;
}

static void system_bundle_is_indexed_without_decoding_any_certificate(void **state)
{
	struct kb_error err = {{0}};
	struct trust_bundle *b = NULL;

	(void)state;
	assert_int_equal(trust_bundle_new(SYSTEM_BUNDLE, &b, &err), 0);
	assert_true(count_begin_lines(SYSTEM_BUNDLE) > 50);
	assert_int_equal(trust_bundle_size(b), count_begin_lines(SYSTEM_BUNDLE));
	assert_int_equal(trust_bundle_decoded(b), 0);
	trust_bundle_free(b);
}

/* Each certificate of the bundle, and two that are not in it (a v1 and a v3 self-signed
 * root), verify with the same result through the lazy store and OpenSSL's loaded one. */
static void every_certificate_verifies_as_with_openssls_loader(void **state)
{
	struct kb_error err = {{0}};
	struct trust_bundle *b = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *outsiders[] = {make_cert("outsider v1", key, NULL, NULL, 1, 0),
			     make_cert("outsider v3", key, NULL, NULL, 3, 1)};
	X509_STORE *lazy, *eager = eager_store(SYSTEM_BUNDLE);
	FILE *f = fopen(SYSTEM_BUNDLE, "r");
	size_t n = 0, ok = 0;
	X509 *x;

	(void)state;
	assert_int_equal(trust_bundle_new(SYSTEM_BUNDLE, &b, &err), 0);
	lazy = lazy_store(b);
	assert_non_null(f);
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		int expected = verify(eager, x, NULL);

		assert_int_equal(verify(lazy, x, NULL), expected);
		ok += expected == X509_V_OK;
		n++;
		X509_free(x);
	}
	fclose(f);
	assert_int_equal(n, trust_bundle_size(b));
	assert_true(ok > n / 2); /* the comparison is not of two failures */
	for (size_t i = 0; i < 2; i++) {
		assert_int_not_equal(verify(eager, outsiders[i], NULL), X509_V_OK);
		assert_int_equal(verify(lazy, outsiders[i], NULL), verify(eager, outsiders[i], NULL));
		X509_free(outsiders[i]);
	}
	X509_STORE_free(lazy);
	X509_STORE_free(eager);
	EVP_PKEY_free(key);
	trust_bundle_free(b);
}

/* The harness's case, one level deeper: a throwaway root (v1, the oldest form of certificate
 * the subject walk must handle) and an intermediate appended to the system bundle, a leaf
 * signed by the intermediate. The intermediate is found by its subject (not its issuer's)
 * and, with libcurl's partial-chain flag, ends the chain; the root verifies by itself. Only
 * what was looked for is decoded. With the intermediate alone in the bundle the leaf still
 * verifies, as with OpenSSL's loader; with neither it does not. */
static void leaf_verifies_through_appended_cas_and_only_they_are_decoded(void **state)
{
	struct kb_error err = {{0}};
	struct trust_bundle *b = NULL;
	EVP_PKEY *root_key = EVP_EC_gen("P-256"), *mid_key = EVP_EC_gen("P-256"),
		 *leaf_key = EVP_EC_gen("P-256");
	X509 *chain[2];
	X509 *leaf;
	X509_STORE *store, *eager;
	const struct {
		const char *name;
		size_t n; /* certificates of chain[] appended */
		size_t first;
		int expected;
		size_t decoded;
	} cases[] = {
		{"root-and-intermediate.pem", 2, 0, X509_V_OK, 1},
		{"intermediate.pem", 1, 1, X509_V_OK, 1},
		{"neither.pem", 0, 0, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0},
	};

	(void)state;
	chain[0] = make_cert("kb test root", root_key, NULL, NULL, 1, 1);
	chain[1] = make_cert("kb test intermediate", mid_key, chain[0], root_key, 3, 1);
	leaf = make_cert("10.0.0.2", leaf_key, chain[1], mid_key, 3, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = bundle_with(cases[i].name, chain + cases[i].first, cases[i].n);

		eager = eager_store(path);
		assert_int_equal(verify(eager, leaf, NULL), cases[i].expected);
		X509_STORE_free(eager);
		assert_int_equal(trust_bundle_new(path, &b, &err), 0);
		store = lazy_store(b);
		assert_int_equal(verify(store, leaf, NULL), cases[i].expected);
		assert_int_equal(trust_bundle_decoded(b), cases[i].decoded);
		if (cases[i].n == 2) {
			assert_int_equal(verify(store, chain[0], NULL), X509_V_OK);
			assert_int_equal(trust_bundle_decoded(b), 2);
		}
		X509_STORE_free(store);
		/* A second store (the next endpoint) reuses what was decoded. */
		store = lazy_store(b);
		assert_int_equal(verify(store, leaf, NULL), cases[i].expected);
		assert_int_equal(trust_bundle_decoded(b), cases[i].n == 2 ? 2 : cases[i].decoded);
		X509_STORE_free(store);
		trust_bundle_free(b);
	}
	X509_free(leaf);
	X509_free(chain[1]);
	X509_free(chain[0]);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(mid_key);
	EVP_PKEY_free(root_key);
}

static void a_path_is_read_once_per_process(void **state)
{
	struct kb_error err = {{0}};
	struct trust_bundle *first = NULL, *second = NULL, *again = NULL;
	char *path = bundle_with("once.pem", NULL, 0);

	(void)state;
	assert_int_equal(trust_bundle_new(path, &first, &err), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(trust_bundle_new(path, &second, &err), 0);
	assert_ptr_equal(first, second);
	trust_bundle_free(first);
	trust_bundle_free(second);
	/* Every reference dropped: the next use reads the file again (gone now). */
	assert_int_equal(trust_bundle_new(path, &again, &err), -ENOENT);
	assert_null(again);
	assert_non_null(strstr(err.msg, path));
	trust_bundle_free(NULL);
}

static int new_from_text(const char *name, const char *text, struct kb_error *err)
{
	struct trust_bundle *b = NULL;
	char *path = path_in_dir(name);
	FILE *f = fopen(path, "w");
	int ret;

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	ret = trust_bundle_new(path, &b, err);
	assert_true(ret == 0 ? b != NULL : b == NULL);
	trust_bundle_free(b);
	return ret;
}

static void anything_but_plain_certificates_is_left_to_openssl(void **state)
{
	struct kb_error err = {{0}};
	/* "hello" in base64: a well-formed PEM block whose content is no certificate. */
	const char *not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";

	(void)state;
	assert_int_equal(new_from_text("empty.pem", "", &err), -ENOTSUP);
	assert_int_equal(new_from_text("text.pem", "no PEM here\n", &err), -ENOTSUP);
	assert_int_equal(new_from_text("trusted.pem",
				       "-----BEGIN TRUSTED CERTIFICATE-----\naGVsbG8=\n"
				       "-----END TRUSTED CERTIFICATE-----\n", &err),
			 -ENOTSUP);
	assert_int_equal(new_from_text("crl.pem",
				       "-----BEGIN X509 CRL-----\naGVsbG8=\n"
				       "-----END X509 CRL-----\n", &err),
			 -ENOTSUP);
	kb_error_clear(&err);
	assert_int_equal(new_from_text("not-der.pem", not_der, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "certificate 1"));
	kb_error_clear(&err);
	assert_int_equal(new_from_text("truncated.pem",
				       "-----BEGIN CERTIFICATE-----\naGVsbG8=\n", &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "malformed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(system_bundle_is_indexed_without_decoding_any_certificate),
		cmocka_unit_test(every_certificate_verifies_as_with_openssls_loader),
		cmocka_unit_test(leaf_verifies_through_appended_cas_and_only_they_are_decoded),
		cmocka_unit_test(a_path_is_read_once_per_process),
		cmocka_unit_test(anything_but_plain_certificates_is_left_to_openssl),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
