#!/usr/bin/env node
'use strict';
/* validate.js: checks CloudFormation templates offline against the current resource registry
 * (@aws-cdk/aws-service-spec), after expanding AWS::LanguageExtensions with the given
 * parameter values. Exit 0 when clean, 1 with one line per finding, 2 on a usage error.
 *
 *   node validate.js [--parameters FILE]... [--param KEY=VALUE]... [--expanded OUT.json] TEMPLATE...
 *
 * FILE is CloudFormation's [{"ParameterKey", "ParameterValue"}] list or a {"KEY": "VALUE"} map
 * (optionally under "Parameters"). --expanded writes the expanded template of the last
 * TEMPLATE as JSON, for tests that check invariants on what CloudFormation will create. */
const fs = require('fs');
const { loadAwsServiceSpec } = require('@aws-cdk/aws-service-spec');
const { loadTemplate } = require('./lib/template');
const { expandTemplate, ExpandError } = require('./lib/expand');
const { checkTemplate } = require('./lib/registry');

function usage(message) {
	process.stderr.write(`cfn-validate: ${message}\n` +
		'usage: validate.js [--parameters FILE]... [--param KEY=VALUE]... [--expanded OUT.json] TEMPLATE...\n');
	process.exit(2);
}

function readParameters(file) {
	const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
	if (Array.isArray(doc))
		return Object.fromEntries(doc.map((p) => [p.ParameterKey, p.ParameterValue]));
	return doc.Parameters && typeof doc.Parameters === 'object' ? doc.Parameters : doc;
}

function parseArgs(argv) {
	const opts = { params: {}, templates: [], expanded: null };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${arg} needs a value`));
		if (arg === '--parameters')
			Object.assign(opts.params, readParameters(next()));
		else if (arg === '--param') {
			const kv = next();
			if (!kv.includes('='))
				usage(`--param needs KEY=VALUE, got '${kv}'`);
			opts.params[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
		} else if (arg === '--expanded')
			opts.expanded = next();
		else if (arg.startsWith('-'))
			usage(`unknown option '${arg}'`);
		else
			opts.templates.push(arg);
	}
	if (opts.templates.length === 0)
		usage('no template given');
	return opts;
}

async function main() {
	const opts = parseArgs(process.argv.slice(2));
	const db = await loadAwsServiceSpec();
	let failed = false;
	for (const file of opts.templates) {
		let errors;
		let expanded = null;
		try {
			const template = loadTemplate(file);
			expanded = expandTemplate(template, opts.params);
			errors = checkTemplate(db, expanded, opts.params);
		} catch (e) {
			if (!(e instanceof ExpandError) && e.name !== 'YAMLException' && e.name !== 'SyntaxError')
				throw e;
			errors = [e.message];
		}
		for (const e of errors)
			process.stdout.write(`${file}: ${e}\n`);
		if (errors.length) {
			failed = true;
			continue;
		}
		const types = new Set(Object.values(expanded.Resources).map((r) => r.Type));
		process.stdout.write(`${file}: ok, ${Object.keys(expanded.Resources).length} resources of ` +
				     `${types.size} types, ${Object.keys(expanded.Outputs || {}).length} outputs\n`);
		if (opts.expanded)
			fs.writeFileSync(opts.expanded, JSON.stringify(expanded, null, 2) + '\n');
	}
	process.exit(failed ? 1 : 0);
}

main().catch((e) => {
	process.stderr.write(`cfn-validate: ${e.stack || e}\n`);
	process.exit(2);
});
