/* xml.c: AWS responses through libxml2 (see xml.h). Never substitutes entities, never reads a
 * DTD, never touches the network, and never takes a field from a nested element. */
#include "kb/xml.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

struct xml_guard {
	bool saw_dtd;
};

/* SAX callback run at "<!DOCTYPE name": stops the parser before the internal subset, so no
 * entity declaration is ever read. */
static void xml_refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
			   const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xml_guard *guard = ctxt->_private;

	(void)name;
	(void)external_id;
	(void)system_id;
	guard->saw_dtd = true;
	xmlStopParser(ctxt);
}

static int xml_parse_failed(xmlParserCtxtPtr ctxt, struct kb_error *err)
{
	const xmlError *e = xmlCtxtGetLastError(ctxt);
	size_t n;

	if (!e || !e->message)
		return kb_errorf(err, EBADMSG, "malformed XML");
	n = strlen(e->message);
	/* libxml2's messages end with a newline; the error text is one line. */
	while (n > 0 && (e->message[n - 1] == '\n' || e->message[n - 1] == ' '))
		n--;
	if (e->code == XML_ERR_NO_MEMORY)
		return kb_errorf(err, ENOMEM, "parsing XML: out of memory");
	return kb_errorf(err, EBADMSG, "malformed XML: line %d: %.*s", e->line, (int)n, e->message);
}

int xml_read(const char *buf, size_t len, xmlDoc **doc, struct kb_error *err)
{
	struct xml_guard guard = {false};
	xmlParserCtxtPtr ctxt;
	xmlDoc *parsed;
	int ret = 0;

	*doc = NULL;
	if (len > XML_MAX_DOCUMENT)
		return kb_errorf(err, EFBIG, "XML document of %zu bytes exceeds the limit of %u",
				 len, XML_MAX_DOCUMENT);
	if (len == 0)
		return kb_errorf(err, EBADMSG, "malformed XML: empty document");
	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return kb_errorf(err, ENOMEM, "parsing XML: out of memory");
	ctxt->_private = &guard;
	ctxt->sax->internalSubset = xml_refuse_dtd;
	/* No XML_PARSE_NOENT (no substitution), no XML_PARSE_DTDLOAD, no XML_PARSE_HUGE (keep
	 * libxml2's depth and text limits); errors are read from the context, not printed. */
	parsed = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, NULL,
				   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (guard.saw_dtd || (parsed && (parsed->intSubset || parsed->extSubset))) {
		ret = kb_errorf(err, EPROTO, "XML document carries a DTD, which AWS never sends");
		goto out;
	}
	if (!parsed || !ctxt->wellFormed) {
		ret = xml_parse_failed(ctxt, err);
		goto out;
	}
	if (!xmlDocGetRootElement(parsed)) {
		ret = kb_errorf(err, EBADMSG, "malformed XML: no root element");
		goto out;
	}
	*doc = parsed;
	parsed = NULL;
out:
	xmlFreeDoc(parsed);
	xmlFreeParserCtxt(ctxt);
	return ret;
}

int xml_read_root(const char *buf, size_t len, const char *name, xmlDoc **doc, xmlNode **root,
		  struct kb_error *err)
{
	xmlNode *top;
	int ret;

	*root = NULL;
	ret = xml_read(buf, len, doc, err);
	if (ret < 0)
		return ret;
	top = xmlDocGetRootElement(*doc);
	if (strcmp((const char *)top->name, name) != 0) {
		ret = kb_errorf(err, EBADMSG, "expected <%s>, got <%s>", name,
				(const char *)top->name);
		xmlFreeDoc(*doc);
		*doc = NULL;
		return ret;
	}
	*root = top;
	return 0;
}

int xml_expect_root(const char *buf, size_t len, const char *name, struct kb_error *err)
{
	xmlDoc *doc = NULL;
	xmlNode *root;
	int ret = xml_read_root(buf, len, name, &doc, &root, err);

	xmlFreeDoc(doc);
	return ret;
}

static bool xml_is(const xmlNode *node, const char *name)
{
	return node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0;
}

xmlNode *xml_next(const xmlNode *node, const char *name)
{
	for (xmlNode *n = node->next; n; n = n->next)
		if (xml_is(n, name))
			return n;
	return NULL;
}

xmlNode *xml_child(const xmlNode *parent, const char *name)
{
	for (xmlNode *n = parent->children; n; n = n->next)
		if (xml_is(n, name))
			return n;
	return NULL;
}

int xml_child_text(const xmlNode *parent, const char *name, char **out, struct kb_error *err)
{
	xmlNode *node = xml_child(parent, name);
	xmlChar *content;

	*out = NULL;
	if (!node)
		return 0;
	content = xmlNodeGetContent(node);
	*out = strdup(content ? (const char *)content : "");
	xmlFree(content);
	if (!*out)
		return kb_errorf(err, ENOMEM, "out of memory");
	return 0;
}

int xml_child_int(const xmlNode *parent, const char *name, int absent, int *out,
		  struct kb_error *err)
{
	char *text = NULL, *end;
	long value;
	int ret = xml_child_text(parent, name, &text, err);

	*out = absent;
	if (ret < 0 || !text)
		return ret;
	errno = 0;
	value = strtol(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || errno || value < INT_MIN || value > INT_MAX)
		ret = kb_errorf(err, EBADMSG, "<%s> is not an integer: '%.64s'", name, text);
	else
		*out = (int)value;
	free(text);
	return ret;
}

int xml_child_bool(const xmlNode *parent, const char *name, bool *out, struct kb_error *err)
{
	char *text = NULL;
	int ret = xml_child_text(parent, name, &text, err);

	*out = false;
	if (ret < 0 || !text)
		return ret;
	if (strcmp(text, "true") == 0)
		*out = true;
	else if (strcmp(text, "false") != 0)
		ret = kb_errorf(err, EBADMSG, "<%s> is not a boolean: '%.64s'", name, text);
	free(text);
	return ret;
}
