/* trust.h: the trust anchors of a CA bundle file, read once per process and decoded on demand.
 *
 * OpenSSL's X509_STORE_load_file decodes every certificate of a bundle, public key included,
 * into the store of every TLS context: with OpenSSL 3.0 that is 17 ms of CPU and 0.9 MB of heap
 * for Debian's 150 certificates, once per endpoint, while a verification needs one or two of
 * them. A trust_bundle keeps each certificate as DER, indexed by the hash of its subject name
 * (the hash OpenSSL names the files of a hashed directory such as /etc/ssl/certs by), and the
 * lookup trust_bundle_attach() gives a store decodes only the certificates whose subject is the
 * name OpenSSL asks for. The store so trusts exactly the certificates X509_STORE_load_file
 * would have put in it; verification itself stays OpenSSL's.
 *
 * Bundles of plain CERTIFICATE blocks only: a file with anything else (trust settings,
 * CRLs, keys, encrypted blocks) or no certificate at all is refused with -ENOTSUP, and the
 * caller hands it to OpenSSL's own loader, which decides what it means. */
#ifndef KB_TRUST_H
#define KB_TRUST_H

#include <stddef.h>
#include <openssl/types.h>

#include "kb/error.h"

struct trust_bundle;

/* The bundle of the file at path: read on first use, shared by later calls for the same path
 * (each call takes a reference). Returns 0, -ENOTSUP (see above), or a negative errno when
 * the file cannot be read or a certificate is malformed; the message is in err. */
int trust_bundle_new(const char *path, struct trust_bundle **out, struct kb_error *err);
/* Drops a reference; the last one frees the bundle. NULL does nothing. */
void trust_bundle_free(struct trust_bundle *bundle);

/* Adds the bundle's lookup to store (an SSL_CTX's). The bundle must outlive the store.
 * Returns 0 or -ENOMEM. */
int trust_bundle_attach(struct trust_bundle *bundle, X509_STORE *store);

/* Certificates in the file, and how many of them have been decoded so far. */
size_t trust_bundle_size(const struct trust_bundle *bundle);
size_t trust_bundle_decoded(const struct trust_bundle *bundle);

#endif
