'use strict';
/* expand.js: the part of the AWS::LanguageExtensions transform the templates here use,
 * applied with concrete parameter values, so the registry check sees the resources
 * CloudFormation will create. Fn::ForEach in Conditions, Resources and Outputs (nested too),
 * Ref to a loop identifier, ${Id} and &{Id} in keys and Fn::Sub strings, Ref and Fn::GetAtt
 * whose name is an Fn::Sub, and Fn::Length of a list it can resolve.
 *
 * It follows the documented rules (and cfn-lint's model of the transform) and no more: a
 * collection is a list or a Ref to a list parameter; an identifier in a plain string is left
 * alone. What it cannot resolve is an error, never a guess. */

const LIST_TYPE = /^(CommaDelimitedList|List<.*>)$/;
const FOREACH = /^Fn::ForEach::[A-Za-z0-9]+$/;

class ExpandError extends Error {}

function transforms(template) {
	const t = template.Transform;
	if (t === undefined)
		return [];
	return Array.isArray(t) ? t : [t];
}

/* CommaDelimitedList members are space-trimmed by CloudFormation. */
function parameterList(template, params, name, where) {
	const decl = (template.Parameters || {})[name];
	if (!decl || !LIST_TYPE.test(decl.Type || ''))
		throw new ExpandError(`${where}: Ref ${name} is not a list parameter`);
	const value = params[name] !== undefined ? params[name] : decl.Default;
	if (value === undefined)
		throw new ExpandError(`${where}: parameter ${name} has no value: pass it with --parameters`);
	return String(value).split(',').map((s) => s.trim());
}

function substitute(text, scope) {
	let out = text;
	for (const [id, value] of Object.entries(scope)) {
		out = out.split('${' + id + '}').join(value);
		out = out.split('&{' + id + '}').join(value.replace(/[^0-9A-Za-z]/g, ''));
	}
	return out;
}

function singleKey(node) {
	if (!node || typeof node !== 'object' || Array.isArray(node))
		return null;
	const keys = Object.keys(node);
	return keys.length === 1 ? keys[0] : null;
}

class Expander {
	constructor(template, params) {
		this.template = template;
		this.params = params;
	}

	collection(spec, where) {
		if (Array.isArray(spec)) {
			return spec.map((item) => {
				if (typeof item === 'string')
					return item;
				if (singleKey(item) === 'Ref' && typeof item.Ref === 'string') {
					const v = this.params[item.Ref];
					if (v === undefined)
						throw new ExpandError(`${where}: collection item Ref ${item.Ref} has no value`);
					return String(v);
				}
				throw new ExpandError(`${where}: collection items are strings or Refs`);
			});
		}
		if (singleKey(spec) === 'Ref' && typeof spec.Ref === 'string')
			return parameterList(this.template, this.params, spec.Ref, where);
		throw new ExpandError(`${where}: a collection is a list or a Ref to a list parameter`);
	}

	forEach(key, value, scope, where) {
		if (!Array.isArray(value) || value.length !== 3 || typeof value[0] !== 'string' ||
		    !value[2] || typeof value[2] !== 'object' || Array.isArray(value[2]))
			throw new ExpandError(`${where}.${key}: expects [Identifier, Collection, {OutputKey: OutputValue}]`);
		const [id, spec, fragment] = value;
		if (scope[id] !== undefined)
			throw new ExpandError(`${where}.${key}: identifier ${id} is already in use by an outer loop`);
		for (const k of Object.keys(fragment)) {
			if (!FOREACH.test(k) && !k.includes('${' + id + '}') && !k.includes('&{' + id + '}'))
				throw new ExpandError(`${where}.${key}: output key ${k} does not use \${${id}}`);
		}
		const out = {};
		for (const item of this.collection(spec, `${where}.${key}`)) {
			const expanded = this.walk(fragment, { ...scope, [id]: item }, `${where}.${key}[${item}]`);
			for (const [k, v] of Object.entries(expanded)) {
				if (k in out)
					throw new ExpandError(`${where}.${key}: loop makes ${k} twice`);
				out[k] = v;
			}
		}
		return out;
	}

	/* Fn::Sub whose string has nothing left for CloudFormation to fill becomes that string,
	 * as the transform leaves it. */
	sub(value, scope, where) {
		if (typeof value === 'string') {
			const s = substitute(value, scope);
			return /\$\{[^!]/.test(s) ? { 'Fn::Sub': s } : s;
		}
		if (Array.isArray(value) && typeof value[0] === 'string') {
			const rest = value.slice(1).map((v, i) => this.walk(v, scope, `${where}[${i + 1}]`));
			return { 'Fn::Sub': [substitute(value[0], scope), ...rest] };
		}
		return { 'Fn::Sub': this.walk(value, scope, where) };
	}

	walkObject(node, scope, where) {
		const out = {};
		for (const [rawKey, value] of Object.entries(node)) {
			if (FOREACH.test(rawKey)) {
				for (const [k, v] of Object.entries(this.forEach(rawKey, value, scope, where))) {
					if (k in out || k in node)
						throw new ExpandError(`${where}: ${rawKey} makes ${k}, which exists`);
					out[k] = v;
				}
				continue;
			}
			if (rawKey.startsWith('Fn::ForEach'))
				throw new ExpandError(`${where}: ${rawKey}: a loop name is letters and digits`);
			const key = substitute(rawKey, scope);
			if (key in out)
				throw new ExpandError(`${where}: ${key} appears twice`);
			out[key] = this.walk(value, scope, `${where}.${key}`);
		}
		return out;
	}

	walk(node, scope, where) {
		if (Array.isArray(node))
			return node.map((v, i) => this.walk(v, scope, `${where}[${i}]`));
		if (!node || typeof node !== 'object')
			return node;
		const fn = singleKey(node);
		if (fn === 'Fn::Sub')
			return this.sub(node[fn], scope, where);
		if (fn === 'Ref') {
			const target = this.walk(node.Ref, scope, `${where}.Ref`);
			if (typeof target === 'string' && scope[target] !== undefined)
				return scope[target];
			return { Ref: target };
		}
		if (fn === 'Fn::Length')
			return this.length(this.walk(node[fn], scope, `${where}.Fn::Length`), where);
		return this.walkObject(node, scope, where);
	}

	length(arg, where) {
		if (Array.isArray(arg))
			return arg.length;
		if (singleKey(arg) === 'Ref' && typeof arg.Ref === 'string')
			return parameterList(this.template, this.params, arg.Ref, `${where}.Fn::Length`).length;
		throw new ExpandError(`${where}: Fn::Length needs a list or a Ref to a list parameter`);
	}
}

function hasForEach(node) {
	if (Array.isArray(node))
		return node.some(hasForEach);
	if (!node || typeof node !== 'object')
		return false;
	return Object.keys(node).some((k) => k.startsWith('Fn::ForEach') || k === 'Fn::Length' ||
				       hasForEach(node[k]));
}

/* Returns the template as CloudFormation sees it after the transform. */
function expandTemplate(template, params) {
	const uses = transforms(template).includes('AWS::LanguageExtensions');
	const sections = ['Conditions', 'Resources', 'Outputs'];
	if (!uses) {
		for (const s of sections) {
			if (hasForEach(template[s]))
				throw new ExpandError(`${s}: Fn::ForEach and Fn::Length need Transform: AWS::LanguageExtensions`);
		}
		return template;
	}
	const expander = new Expander(template, params);
	const out = { ...template };
	for (const s of sections) {
		if (template[s] !== undefined)
			out[s] = expander.walk(template[s], {}, s);
	}
	out.Transform = transforms(template).filter((t) => t !== 'AWS::LanguageExtensions');
	if (out.Transform.length === 0)
		delete out.Transform;
	return out;
}

module.exports = { expandTemplate, ExpandError, LIST_TYPE };
