'use strict';
/* template.js: reads a CloudFormation template, YAML (with the !Ref, !Sub ... short forms) or
 * JSON, into plain objects in which every short form is its long {"Fn::X": ...} form, as
 * CloudFormation itself sees it. It never guesses: an unknown tag is a parse error. */
const fs = require('fs');
const yaml = require('js-yaml');
const { build, localTags } = require('js-yaml-cloudformation-schema');

const schema = yaml.DEFAULT_SCHEMA.extend(build(localTags, yaml));

/* The short-form objects carry a hidden copy of their data; JSON drops it. YAML's timestamps
 * (an unquoted AWSTemplateFormatVersion: 2010-09-09) are strings to CloudFormation. */
function plain(value) {
	if (value instanceof Date)
		return value.toISOString().replace(/T00:00:00\.000Z$/, '');
	if (Array.isArray(value))
		return value.map(plain);
	if (value && typeof value === 'object') {
		const out = {};
		for (const key of Object.keys(value))
			out[key] = plain(value[key]);
		return out;
	}
	return value;
}

function parseTemplate(text, name) {
	const doc = yaml.load(text, { schema, filename: name });
	if (!doc || typeof doc !== 'object' || Array.isArray(doc))
		throw new Error(`${name}: a template is a mapping at the top level`);
	return plain(doc);
}

function loadTemplate(path) {
	return parseTemplate(fs.readFileSync(path, 'utf8'), path);
}

module.exports = { loadTemplate, parseTemplate };
