/* xml.h: libxml2 set up for untrusted AWS Query responses, and lookups by local name.
 *
 * AWS answers in namespaced XML whose namespace differs between AWS and its emulators (EC2's
 * ends with '/', moto's does not; EC2's error document has none), so elements are matched by
 * local name only, and only among direct children: a field is never picked up from a nested
 * element of the same name. A document is parsed without network access, without entity
 * substitution and without any DTD (AWS never sends one; refusing it closes entity expansion
 * attacks), and only up to XML_MAX_DOCUMENT bytes. */
#ifndef KB_XML_H
#define KB_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "kb/error.h"

/* A page of 1000 ENIs is a few MB; 1000 with 50 full-length tags each, some 20 MB. The same
 * bound as http.c's for a body. */
#define XML_MAX_DOCUMENT (32u << 20)

/* -EBADMSG for a document that is not well-formed XML, -EFBIG above the limit, -EPROTO for a
 * DTD, -ENOMEM; the message says which and where. *doc is freed with xmlFreeDoc(). */
int xml_read(const char *buf, size_t len, xmlDoc **doc, struct kb_error *err);
/* Parses and checks that the root element's local name is `name` ("DescribeVolumesResponse");
 * -EBADMSG naming the root that came instead. On success *doc and *root are set. */
int xml_read_root(const char *buf, size_t len, const char *name, xmlDoc **doc, xmlNode **root,
		  struct kb_error *err);
/* The same check when only the root matters (a response without result members). */
int xml_expect_root(const char *buf, size_t len, const char *name, struct kb_error *err);

/* First child element of parent named `name`, NULL when absent. Borrowed. */
xmlNode *xml_child(const xmlNode *parent, const char *name);
/* Next sibling element after node named `name`, NULL at the end. Borrowed. */
xmlNode *xml_next(const xmlNode *node, const char *name);
/* Text of the child element `name` copied into *out (malloc'd; "" for an empty element), NULL
 * when there is no such child. 0 or -ENOMEM. */
int xml_child_text(const xmlNode *parent, const char *name, char **out, struct kb_error *err);
/* Decimal integer child; *out = absent when there is no such child, -EBADMSG when it is not an
 * int. */
int xml_child_int(const xmlNode *parent, const char *name, int absent, int *out,
		  struct kb_error *err);
/* "true" or "false"; false when absent, -EBADMSG otherwise. */
int xml_child_bool(const xmlNode *parent, const char *name, bool *out, struct kb_error *err);

#endif
