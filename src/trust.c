/* trust.c: a CA bundle indexed once per process, its certificates decoded when a TLS
 * verification asks for their subject (see trust.h). Never adds to a store a certificate
 * that is not in the file, nor one whose subject is not the name asked for; the verification
 * and its checks (signatures, validity, host name) are OpenSSL's, as they were. */
#include "kb/trust.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

struct trust_cert {
	unsigned long subject_hash; /* X509_NAME_hash_ex of the subject */
	unsigned char *der;
	long der_len;
	X509 *x509; /* decoded on demand, then kept for every later store */
};

struct trust_bundle {
	char *path;
	struct trust_cert *certs;
	size_t count, cap;
	size_t decoded;
	unsigned refs;
	struct trust_bundle *next;
};

/* Open bundles, so each file is read once per process (one per endpoint before). The
 * transport runs on one thread. */
static struct trust_bundle *open_bundles;
static X509_LOOKUP_METHOD *lookup_method; /* while a bundle is open */

/* One DER header: true when it is sound and definite-length; *p is then its content. */
static bool der_header(const unsigned char **p, long *len, int *tag, int *cls, long max)
{
	int r = ASN1_get_object(p, len, tag, cls, max);

	return !(r & 0x80) && !(r & 0x01);
}

/* The subject of a DER certificate, RFC 5280 4.1: Certificate ::= SEQUENCE { tbsCertificate
 * SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject, ...
 * } ...}. Only the headers before the subject are read; d2i_X509_NAME decodes the subject. */
static X509_NAME *subject_of(const unsigned char *der, long len)
{
	const unsigned char *p = der, *field, *end;
	long l;
	int tag, cls, index = 0;

	if (!der_header(&p, &l, &tag, &cls, len) || tag != V_ASN1_SEQUENCE ||
	    !der_header(&p, &l, &tag, &cls, l) || tag != V_ASN1_SEQUENCE)
		return NULL;
	for (end = p + l; p < end; p += l) {
		field = p;
		if (!der_header(&p, &l, &tag, &cls, end - p))
			return NULL;
		if (index == 0 && cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
			continue; /* [0] version */
		if (index++ == 4) {
			len = (long)(p - field) + l;
			p = field;
			return d2i_X509_NAME(NULL, &p, len);
		}
	}
	return NULL;
}

static int add_cert(struct trust_bundle *b, unsigned char *der, long len, struct kb_error *err)
{
	X509_NAME *name = subject_of(der, len);
	struct trust_cert *grown;
	unsigned long hash = 0;
	int ok = 0;

	if (name)
		hash = X509_NAME_hash_ex(name, NULL, NULL, &ok);
	X509_NAME_free(name);
	if (!ok)
		return kb_errorf(err, EINVAL, "%s: certificate %zu has no readable subject",
				 b->path, b->count + 1);
	if (b->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;

		grown = realloc(b->certs, cap * sizeof(*grown));
		if (!grown)
			return kb_errorf(err, ENOMEM, "out of memory");
		b->certs = grown;
		b->cap = cap;
	}
	b->certs[b->count++] = (struct trust_cert){hash, der, len, NULL};
	return 0;
}

/* One PEM block; takes data when it keeps it (sets *data to NULL). */
static int add_block(struct trust_bundle *b, const char *name, const char *header,
		     unsigned char **data, long len, struct kb_error *err)
{
	int ret;

	if ((strcmp(name, PEM_STRING_X509) != 0 && strcmp(name, PEM_STRING_X509_OLD) != 0) ||
	    *header)
		return kb_errorf(err, ENOTSUP, "%s: a %s block: left to OpenSSL's loader",
				 b->path, name);
	ret = add_cert(b, *data, len, err);
	if (ret == 0)
		*data = NULL;
	return ret;
}

/* End of file is PEM_read_bio failing with "no start line", as for OpenSSL's own loader. */
static int read_blocks(struct trust_bundle *b, BIO *in, struct kb_error *err)
{
	int ret = 0;

	while (ret == 0) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long len = 0;

		if (!PEM_read_bio(in, &name, &header, &data, &len)) {
			if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
				ret = kb_errorf(err, EINVAL, "%s: a PEM block is malformed",
						b->path);
			break;
		}
		ret = add_block(b, name, header, &data, len, err);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
	}
	if (ret == 0 && b->count == 0)
		ret = kb_errorf(err, ENOTSUP, "%s: no certificate in it", b->path);
	return ret;
}

static int read_bundle(struct trust_bundle *b, struct kb_error *err)
{
	FILE *f = fopen(b->path, "re");
	BIO *in;
	int ret;

	if (!f)
		return kb_errorf(err, errno, "cannot open CA bundle %s: %s", b->path,
				 strerror(errno));
	in = BIO_new_fp(f, BIO_CLOSE);
	if (!in) {
		fclose(f);
		return kb_errorf(err, ENOMEM, "out of memory");
	}
	/* Errors stay off OpenSSL's queue: libcurl reads it after a failed handshake. */
	ERR_set_mark();
	ret = read_blocks(b, in, err);
	ERR_pop_to_mark();
	BIO_free(in);
	return ret;
}

/* Decodes the certificate unless done before; NULL when it does not decode (then it is no
 * anchor, and its decoding errors stay off the queue libcurl reads). */
static X509 *cert_x509(struct trust_bundle *b, struct trust_cert *c)
{
	const unsigned char *p = c->der;

	if (!c->x509) {
		ERR_set_mark();
		c->x509 = d2i_X509(NULL, &p, c->der_len);
		ERR_pop_to_mark();
		if (c->x509)
			b->decoded++;
	}
	return c->x509;
}

/* X509_LOOKUP get_by_subject: every certificate of the bundle with this subject goes into the
 * store, as a hashed directory's files do (by_dir.c), and the first is handed back. Like
 * OpenSSL's lookups it hands back a pointer without a reference of its own (the bundle keeps
 * one); X509_STORE_CTX_get_by_subject takes one for its caller. */
static int lookup_by_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name,
			     X509_OBJECT *ret)
{
	struct trust_bundle *b = X509_LOOKUP_get_method_data(lu);
	X509_STORE *store = X509_LOOKUP_get_store(lu);
	X509 *first = NULL;
	unsigned long hash;
	int ok = 0;

	if (type != X509_LU_X509 || !b || !store)
		return 0;
	hash = X509_NAME_hash_ex(name, NULL, NULL, &ok);
	for (size_t i = 0; ok && i < b->count; i++) {
		X509 *x = b->certs[i].subject_hash == hash ? cert_x509(b, &b->certs[i]) : NULL;

		if (!x || X509_NAME_cmp(X509_get_subject_name(x), name) != 0)
			continue;
		if (!X509_STORE_add_cert(store, x))
			return 0;
		if (!first)
			first = x;
	}
	if (!first || !X509_OBJECT_set1_X509(ret, first))
		return 0;
	X509_free(first);
	return 1;
}

int trust_bundle_attach(struct trust_bundle *bundle, X509_STORE *store)
{
	X509_LOOKUP *lu = X509_STORE_add_lookup(store, lookup_method);

	if (!lu || !X509_LOOKUP_set_method_data(lu, bundle))
		return -ENOMEM;
	return 0;
}

static void bundle_destroy(struct trust_bundle *b)
{
	for (size_t i = 0; i < b->count; i++) {
		OPENSSL_free(b->certs[i].der);
		X509_free(b->certs[i].x509);
	}
	free(b->certs);
	free(b->path);
	free(b);
}

static int bundle_open(const char *path, struct trust_bundle **out, struct kb_error *err)
{
	struct trust_bundle *b = calloc(1, sizeof(*b));
	int ret;

	if (!b || !(b->path = strdup(path))) {
		free(b);
		return kb_errorf(err, ENOMEM, "out of memory");
	}
	if (!lookup_method) {
		lookup_method = X509_LOOKUP_meth_new("kafka-bootstrap CA bundle");
		if (!lookup_method ||
		    !X509_LOOKUP_meth_set_get_by_subject(lookup_method, lookup_by_subject)) {
			bundle_destroy(b);
			return kb_errorf(err, ENOMEM, "out of memory");
		}
	}
	ret = read_bundle(b, err);
	if (ret < 0) {
		bundle_destroy(b);
		return ret;
	}
	*out = b;
	return 0;
}

int trust_bundle_new(const char *path, struct trust_bundle **out, struct kb_error *err)
{
	struct trust_bundle *b;
	int ret;

	*out = NULL;
	for (b = open_bundles; b; b = b->next) {
		if (strcmp(b->path, path) == 0) {
			b->refs++;
			*out = b;
			return 0;
		}
	}
	ret = bundle_open(path, &b, err);
	if (ret == 0) {
		b->refs = 1;
		b->next = open_bundles;
		open_bundles = b;
		*out = b;
	} else if (!open_bundles) {
		X509_LOOKUP_meth_free(lookup_method);
		lookup_method = NULL;
	}
	return ret;
}

void trust_bundle_free(struct trust_bundle *bundle)
{
	struct trust_bundle **link = &open_bundles;

	if (!bundle || --bundle->refs > 0)
		return;
	while (*link && *link != bundle)
		link = &(*link)->next;
	if (*link)
		*link = bundle->next;
	bundle_destroy(bundle);
	if (!open_bundles) {
		X509_LOOKUP_meth_free(lookup_method);
		lookup_method = NULL;
	}
}

size_t trust_bundle_size(const struct trust_bundle *bundle)
{
	return bundle->count;
}

size_t trust_bundle_decoded(const struct trust_bundle *bundle)
{
	return bundle->decoded;
}
