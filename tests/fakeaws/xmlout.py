"""Build response XML from nested (tag, value) pairs, escaped by ElementTree.

A value is text (str, int, bool as true/false), a list of (tag, value) pairs for children,
or None to leave the element out. AWS pretty-prints its Query responses, so the output is
indented: a client parser must cope with the whitespace text nodes that brings.
"""

import xml.etree.ElementTree as ET


def _fill(parent, children):
    for tag, value in children:
        if value is None:
            continue
        child = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _fill(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        else:
            child.text = str(value)


def render(root, children, namespace=None, indent="  ", declaration=False):
    """Serialize one document; `namespace` becomes the root's default xmlns."""
    element = ET.Element(root, {"xmlns": namespace} if namespace else {})
    _fill(element, children)
    if indent is not None:
        ET.indent(element, space=indent)
    # ElementTree writes "<a />"; AWS writes "<a/>". Text is escaped, so " />" can only
    # be the end of an empty element.
    text = ET.tostring(element, encoding="unicode").replace(" />", "/>")
    if declaration:
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return (text + "\n").encode("utf-8")
