'use strict';
/* registry.js: checks an expanded template against the CloudFormation resource registry as
 * the AWS CDK publishes it (@aws-cdk/aws-service-spec): every resource type exists, every
 * property name exists (nested types too), every required property is there, every value has
 * the registry's type, and every Ref, Fn::GetAtt, Fn::Sub variable, condition and DependsOn
 * names something that exists. The registry does not describe resource attributes
 * (CreationPolicy, UpdatePolicy, ...): the small table below does, from the CloudFormation
 * User Guide. A finding is an error; nothing is downgraded to a warning. */

const { LIST_TYPE } = require('./expand');

const PSEUDO = {
	'AWS::AccountId': 'scalar', 'AWS::NotificationARNs': 'list', 'AWS::NoValue': 'novalue',
	'AWS::Partition': 'scalar', 'AWS::Region': 'scalar', 'AWS::StackId': 'scalar',
	'AWS::StackName': 'scalar', 'AWS::URLSuffix': 'scalar',
};
const TOP_LEVEL = ['AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters', 'Rules',
		   'Mappings', 'Conditions', 'Transform', 'Resources', 'Outputs', 'Hooks'];
const RESOURCE_KEYS = ['Type', 'Properties', 'DependsOn', 'Condition', 'DeletionPolicy',
		       'UpdateReplacePolicy', 'CreationPolicy', 'UpdatePolicy', 'Metadata'];
const PARAMETER_KEYS = ['Type', 'Default', 'Description', 'AllowedValues', 'AllowedPattern',
			'ConstraintDescription', 'MaxLength', 'MinLength', 'MaxValue', 'MinValue', 'NoEcho'];
const PARAMETER_TYPE = /^(String|Number|List<Number>|CommaDelimitedList|AWS::[A-Za-z0-9:]+|List<AWS::[A-Za-z0-9:]+>|AWS::SSM::Parameter::(Name|Value<.+>))$/;
const CONDITION_FNS = ['Fn::Equals', 'Fn::Not', 'Fn::And', 'Fn::Or', 'Condition'];
const RULE_FNS = ['Fn::Contains', 'Fn::EachMemberEquals', 'Fn::EachMemberIn', 'Fn::RefAll',
		  'Fn::ValueOf', 'Fn::ValueOfAll'];
const VALUE_FNS = ['Ref', 'Fn::GetAtt', 'Fn::Sub', 'Fn::Join', 'Fn::Select', 'Fn::Split', 'Fn::If',
		   'Fn::FindInMap', 'Fn::Base64', 'Fn::GetAZs', 'Fn::ImportValue', 'Fn::Cidr',
		   'Fn::ToJsonString', 'Fn::Transform'];

const t = (type, extra) => ({ type: { type, ...extra } });
const inline = (properties) => ({ type: { type: 'inline', properties } });
const SUSPENDABLE = ['Launch', 'Terminate', 'AddToLoadBalancer', 'AlarmNotification',
		     'AZRebalance', 'HealthCheck', 'InstanceRefresh', 'ReplaceUnhealthy',
		     'ScheduledActions'];
const CREATION_POLICY = {
	AutoScalingCreationPolicy: inline({ MinSuccessfulInstancesPercent: t('integer') }),
	ResourceSignal: inline({ Count: t('integer'), Timeout: t('string') }),
	StartFleet: t('boolean'),
};
const UPDATE_POLICY = {
	AutoScalingReplacingUpdate: inline({ WillReplace: t('boolean') }),
	AutoScalingRollingUpdate: inline({
		MaxBatchSize: t('integer'), MinActiveInstancesPercent: t('integer'),
		MinInstancesInService: t('integer'), MinSuccessfulInstancesPercent: t('integer'),
		PauseTime: t('string'), WaitOnResourceSignals: t('boolean'),
		SuspendProcesses: t('array', { element: { type: 'enum', values: SUSPENDABLE } }),
	}),
	AutoScalingScheduledAction: inline({ IgnoreUnmodifiedGroupSizeProperties: t('boolean') }),
	CodeDeployLambdaAliasUpdate: inline({
		AfterAllowTrafficHook: t('string'), ApplicationName: t('string'),
		BeforeAllowTrafficHook: t('string'), DeploymentGroupName: t('string'),
	}),
	EnableVersionUpgrade: t('boolean'),
	UseOnlineResharding: t('boolean'),
};

function isObject(v) {
	return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function intrinsicOf(v) {
	if (!isObject(v))
		return null;
	const keys = Object.keys(v);
	if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::')))
		return keys[0];
	return null;
}

function distance(a, b) {
	const d = Array.from({ length: a.length + 1 }, (_, i) => [i]);
	for (let j = 1; j <= b.length; j++)
		d[0][j] = j;
	for (let i = 1; i <= a.length; i++) {
		for (let j = 1; j <= b.length; j++) {
			d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1,
					   d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
		}
	}
	return d[a.length][b.length];
}

function suggest(name, names) {
	const best = names.map((n) => [distance(name, n), n]).sort((x, y) => x[0] - y[0])[0];
	return best && best[0] <= Math.max(2, name.length / 4) ? ` (did you mean '${best[1]}'?)` : '';
}

class Checker {
	constructor(db, template) {
		this.db = db;
		this.template = template;
		this.errors = [];
		this.parameters = template.Parameters || {};
		this.resources = template.Resources || {};
		this.conditions = template.Conditions || {};
		this.mappings = template.Mappings || {};
	}

	error(path, message) {
		this.errors.push(`${path}: ${message}`);
	}

	resourceSpec(type) {
		const found = this.db.lookup('resource', 'cloudFormationType', 'equals', type);
		return found.length === 1 ? found[0] : null;
	}

	/* What a reference yields: 'scalar', 'list', 'object', 'novalue', or null when unknown. */
	ref(name, path) {
		if (typeof name !== 'string') {
			this.error(path, 'Ref takes a logical name');
			return null;
		}
		if (name in PSEUDO)
			return PSEUDO[name];
		if (name in this.parameters)
			return LIST_TYPE.test(this.parameters[name].Type || '') ? 'list' : 'scalar';
		if (name in this.resources)
			return 'scalar';
		this.error(path, `Ref to '${name}', which is no parameter, resource or pseudo parameter` +
			   suggest(name, [...Object.keys(this.parameters), ...Object.keys(this.resources)]));
		return null;
	}

	getAtt(resource, attribute, path) {
		const res = this.resources[resource];
		if (!res) {
			this.error(path, `Fn::GetAtt of '${resource}', which is no resource` +
				   suggest(resource, Object.keys(this.resources)));
			return null;
		}
		const spec = typeof res.Type === 'string' ? this.resourceSpec(res.Type) : null;
		if (!spec)
			return 'scalar';
		const attr = spec.attributes[attribute];
		if (!attr) {
			this.error(path, `${res.Type} has no attribute '${attribute}'` +
				   suggest(attribute, Object.keys(spec.attributes)));
			return null;
		}
		if (attr.type.type === 'array')
			return 'list';
		return ['ref', 'map', 'json'].includes(attr.type.type) ? 'object' : 'scalar';
	}

	subVariables(text, names, path) {
		for (const m of text.matchAll(/\$\{([^}!][^}]*)\}/g)) {
			const v = m[1].trim();
			if (names.includes(v))
				continue;
			const dot = v.indexOf('.');
			if (dot > 0 && !(v in PSEUDO))
				this.getAtt(v.slice(0, dot), v.slice(dot + 1), path);
			else
				this.ref(v, path);
		}
	}

	condition(name, path) {
		if (typeof name !== 'string' || !(name in this.conditions))
			this.error(path, `condition '${name}' is not defined` +
				   suggest(String(name), Object.keys(this.conditions)));
	}

	args(fn, arg, count, path) {
		const ok = Array.isArray(arg) && (typeof count === 'number' ? arg.length === count
						  : arg.length >= count[0] && arg.length <= count[1]);
		if (!ok)
			this.error(path, `${fn} takes a list of ${Array.isArray(count) ? count.join(' to ') : count}`);
		return ok;
	}

	/* Checks one intrinsic function; allowed is the list of function names valid here. */
	intrinsic(fn, arg, path, allowed) {
		const at = `${path}.${fn}`;
		if (!allowed.includes(fn)) {
			this.error(path, `${fn} is not allowed here`);
			return null;
		}
		switch (fn) {
		case 'Ref':
			return this.ref(arg, at);
		case 'Fn::GetAtt': {
			const parts = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : arg;
			if (!Array.isArray(parts) || parts.length !== 2 || typeof parts[0] !== 'string' || !parts[0]) {
				this.error(at, 'takes [Resource, Attribute] or "Resource.Attribute"');
				return null;
			}
			if (typeof parts[1] !== 'string') {
				this.walk(parts[1], `${at}[1]`, allowed);
				return 'scalar';
			}
			return this.getAtt(parts[0], parts[1], at);
		}
		case 'Fn::Sub':
			if (typeof arg === 'string') {
				this.subVariables(arg, [], at);
			} else if (this.args(fn, arg, 2, at) && typeof arg[0] === 'string' && isObject(arg[1])) {
				this.subVariables(arg[0], Object.keys(arg[1]), at);
				this.walk(arg[1], `${at}[1]`, allowed);
			} else {
				this.error(at, 'takes a string or [string, {variables}]');
			}
			return 'scalar';
		case 'Fn::Join':
			if (this.args(fn, arg, 2, at)) {
				if (typeof arg[0] !== 'string')
					this.error(`${at}[0]`, 'the delimiter is a string');
				this.list(arg[1], `${at}[1]`, allowed);
			}
			return 'scalar';
		case 'Fn::Split':
			if (this.args(fn, arg, 2, at))
				this.walk(arg, at, allowed);
			return 'list';
		case 'Fn::Select':
			if (this.args(fn, arg, 2, at)) {
				this.walk(arg[0], `${at}[0]`, allowed);
				this.list(arg[1], `${at}[1]`, allowed);
			}
			return null;
		case 'Fn::If':
			if (this.args(fn, arg, 3, at)) {
				this.condition(arg[0], `${at}[0]`);
				this.walk(arg.slice(1), at, allowed);
			}
			return null;
		case 'Fn::FindInMap':
			if (this.args(fn, arg, [3, 4], at)) {
				if (typeof arg[0] === 'string' && !(arg[0] in this.mappings))
					this.error(`${at}[0]`, `mapping '${arg[0]}' is not defined`);
				this.walk(arg, at, allowed);
			}
			return null;
		case 'Fn::GetAZs':
		case 'Fn::Cidr':
			this.walk(arg, at, allowed);
			return 'list';
		case 'Fn::Equals':
			if (this.args(fn, arg, 2, at))
				this.walk(arg, at, allowed);
			return 'scalar';
		case 'Fn::Not':
		case 'Fn::And':
		case 'Fn::Or':
			if (this.args(fn, arg, fn === 'Fn::Not' ? 1 : [2, 10], at))
				this.walk(arg, at, allowed);
			return 'scalar';
		default:
			this.walk(arg, at, allowed);
			return 'scalar';
		}
	}

	list(value, path, allowed) {
		const fn = intrinsicOf(value);
		if (fn) {
			if (this.intrinsic(fn, value[fn], path, allowed) === 'scalar')
				this.error(path, `expects a list, ${fn} gives one value`);
		} else if (Array.isArray(value)) {
			this.walk(value, path, allowed);
		} else {
			this.error(path, 'expects a list');
		}
	}

	/* Walks a value of no known type, checking the intrinsic functions in it. */
	walk(value, path, allowed) {
		const fn = intrinsicOf(value);
		if (fn) {
			this.intrinsic(fn, value[fn], path, allowed);
		} else if (Array.isArray(value)) {
			value.forEach((v, i) => this.walk(v, `${path}[${i}]`, allowed));
		} else if (isObject(value)) {
			for (const [k, v] of Object.entries(value)) {
				if (k === 'Condition' && allowed.includes('Condition') && typeof v === 'string')
					this.condition(v, `${path}.Condition`);
				else
					this.walk(v, `${path}.${k}`, allowed);
			}
		}
	}

	scalar(value, type, path) {
		const kind = type.type;
		const ok = {
			string: () => ['string', 'number', 'boolean'].includes(typeof value),
			'date-time': () => typeof value === 'string',
			integer: () => Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value)),
			number: () => (typeof value === 'number' && Number.isFinite(value)) ||
				(typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))),
			boolean: () => typeof value === 'boolean' || (typeof value === 'string' && /^(true|false)$/i.test(value)),
			null: () => value === null,
			enum: () => typeof value === 'string' && type.values.includes(value),
		}[kind];
		if (!ok())
			this.error(path, `expects ${kind === 'enum' ? 'one of ' + type.values.join(', ') : kind}, got ${JSON.stringify(value)}`);
	}

	/* Checks a value against a registry type. */
	value(value, type, path) {
		const fn = intrinsicOf(value);
		if (fn === 'Fn::If' && Array.isArray(value[fn]) && value[fn].length === 3) {
			this.condition(value[fn][0], `${path}.Fn::If[0]`);
			this.value(value[fn][1], type, `${path}.Fn::If[1]`);
			this.value(value[fn][2], type, `${path}.Fn::If[2]`);
			return;
		}
		if (fn) {
			const yields = this.intrinsic(fn, value[fn], path, VALUE_FNS);
			const wantsList = type.type === 'array';
			const wantsObject = ['ref', 'map', 'tag', 'inline'].includes(type.type);
			if (yields === 'scalar' && (wantsList || wantsObject))
				this.error(path, `expects ${wantsList ? 'a list' : 'an object'}, ${fn} gives one value`);
			if (yields === 'list' && !wantsList && type.type !== 'json' && type.type !== 'union')
				this.error(path, `expects ${type.type}, ${fn} gives a list`);
			return;
		}
		switch (type.type) {
		case 'array':
			if (!Array.isArray(value))
				return this.error(path, `expects a list, got ${JSON.stringify(value)}`);
			return value.forEach((v, i) => this.value(v, type.element, `${path}[${i}]`));
		case 'map':
			if (!isObject(value))
				return this.error(path, 'expects a map');
			return Object.entries(value).forEach(([k, v]) => this.value(v, type.element, `${path}.${k}`));
		case 'ref':
			return this.properties(value, this.db.get('typeDefinition', type.reference.$ref).properties, path);
		case 'inline':
			return this.properties(value, type.properties, path);
		case 'tag':
			return this.properties(value, { Key: { type: { type: 'string' }, required: true },
							Value: { type: { type: 'string' }, required: true } }, path);
		case 'json':
			return this.walk(value, path, VALUE_FNS);
		case 'union':
			return this.union(value, type, path);
		default:
			return this.scalar(value, type, path);
		}
	}

	union(value, type, path) {
		let best = null;
		for (const member of type.types) {
			const trial = new Checker(this.db, this.template);
			trial.value(value, member, path);
			if (trial.errors.length === 0)
				return;
			if (!best || trial.errors.length < best.length)
				best = trial.errors;
		}
		this.errors.push(...best);
	}

	properties(obj, spec, path) {
		if (!isObject(obj))
			return this.error(path, `expects an object, got ${JSON.stringify(obj)}`);
		for (const [name, value] of Object.entries(obj)) {
			if (!(name in spec))
				this.error(path, `unknown property '${name}'` + suggest(name, Object.keys(spec)));
			else
				this.value(value, spec[name].type, `${path}.${name}`);
		}
		for (const [name, prop] of Object.entries(spec)) {
			if (prop.required && !(name in obj))
				this.error(path, `missing required property '${name}'`);
		}
	}

	/* A named entry of a section: letters and digits, an object, only known keys. */
	entry(path, name, value, what, keys) {
		if (!/^[A-Za-z0-9]+$/.test(name))
			this.error(path, `a ${what} name is letters and digits`);
		if (!isObject(value)) {
			this.error(path, `a ${what} is an object`);
			return false;
		}
		for (const key of Object.keys(value)) {
			if (!keys.includes(key))
				this.error(path, `unknown ${what} attribute '${key}'` + suggest(key, keys));
		}
		return true;
	}

	resource(id, res) {
		const path = `Resources.${id}`;
		if (!this.entry(path, id, res, 'resource', RESOURCE_KEYS))
			return;
		if (res.Condition !== undefined)
			this.condition(res.Condition, `${path}.Condition`);
		for (const dep of [].concat(res.DependsOn || [])) {
			if (!(dep in this.resources))
				this.error(`${path}.DependsOn`, `'${dep}' is no resource`);
		}
		for (const key of ['DeletionPolicy', 'UpdateReplacePolicy']) {
			const allowed = key === 'DeletionPolicy' ? ['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot']
				: ['Delete', 'Retain', 'Snapshot'];
			if (res[key] !== undefined)
				this.value(res[key], { type: 'enum', values: allowed }, `${path}.${key}`);
		}
		if (res.CreationPolicy !== undefined)
			this.properties(res.CreationPolicy, CREATION_POLICY, `${path}.CreationPolicy`);
		if (res.UpdatePolicy !== undefined)
			this.properties(res.UpdatePolicy, UPDATE_POLICY, `${path}.UpdatePolicy`);
		if (typeof res.Type !== 'string')
			return this.error(path, 'Type is missing');
		if (/^(Custom::|AWS::CloudFormation::CustomResource$)/.test(res.Type))
			return this.walk(res.Properties || {}, `${path}.Properties`, VALUE_FNS);
		const spec = this.resourceSpec(res.Type);
		if (!spec)
			return this.error(`${path}.Type`, `'${res.Type}' is not a CloudFormation resource type`);
		this.properties(res.Properties || {}, spec.properties, `${path}.Properties`);
	}

	parameter(name, decl, given) {
		const path = `Parameters.${name}`;
		if (!this.entry(path, name, decl, 'parameter', PARAMETER_KEYS))
			return;
		if (!PARAMETER_TYPE.test(decl.Type || ''))
			this.error(`${path}.Type`, `'${decl.Type}' is not a parameter type`);
		if (decl.Default !== undefined)
			this.parameterValue(name, decl, String(decl.Default), `${path}.Default`);
		if (given !== undefined)
			this.parameterValue(name, decl, String(given), `parameter value ${name}`);
	}

	/* The constraints CloudFormation applies to a value (each member of a list). */
	parameterValue(name, decl, value, path) {
		const members = LIST_TYPE.test(decl.Type || '') ? value.split(',').map((s) => s.trim()) : [value];
		for (const v of members) {
			if (decl.AllowedValues && !decl.AllowedValues.map(String).includes(v))
				this.error(path, `'${v}' is not one of ${decl.AllowedValues.join(', ')}`);
			if (decl.AllowedPattern && !new RegExp(`^(?:${decl.AllowedPattern})$`).test(v))
				this.error(path, `'${v}' does not match ${decl.AllowedPattern}`);
			if (decl.Type === 'Number' && !Number.isFinite(Number(v)))
				this.error(path, `'${v}' is not a number`);
			if (decl.MinValue !== undefined && Number(v) < Number(decl.MinValue))
				this.error(path, `${v} is below MinValue ${decl.MinValue}`);
			if (decl.MaxValue !== undefined && Number(v) > Number(decl.MaxValue))
				this.error(path, `${v} is above MaxValue ${decl.MaxValue}`);
		}
	}

	output(name, out) {
		const path = `Outputs.${name}`;
		if (!this.entry(path, name, out, 'output', ['Description', 'Value', 'Export', 'Condition']))
			return;
		if (out.Description !== undefined && typeof out.Description !== 'string')
			this.error(`${path}.Description`, 'is a literal string');
		if (out.Value === undefined)
			this.error(path, 'Value is missing');
		if (out.Condition !== undefined)
			this.condition(out.Condition, `${path}.Condition`);
		this.walk(out.Value, `${path}.Value`, VALUE_FNS);
		if (out.Export !== undefined)
			this.properties(out.Export, { Name: { type: { type: 'string' }, required: true } }, `${path}.Export`);
	}

	interfaceMetadata() {
		const groups = ((this.template.Metadata || {})['AWS::CloudFormation::Interface'] || {}).ParameterGroups || [];
		groups.forEach((g, i) => (g.Parameters || []).forEach((p) => {
			if (!(p in this.parameters))
				this.error(`Metadata.AWS::CloudFormation::Interface.ParameterGroups[${i}]`, `'${p}' is no parameter`);
		}));
	}

	check(givenParameters) {
		for (const key of Object.keys(this.template)) {
			if (!TOP_LEVEL.includes(key))
				this.error(key, 'unknown top-level section' + suggest(key, TOP_LEVEL));
		}
		for (const [name, decl] of Object.entries(this.parameters))
			this.parameter(name, decl, givenParameters[name]);
		for (const name of Object.keys(givenParameters)) {
			if (!(name in this.parameters))
				this.error(`parameter value ${name}`, 'the template has no such parameter');
		}
		this.interfaceMetadata();
		for (const [name, cond] of Object.entries(this.conditions))
			this.walk(cond, `Conditions.${name}`, [...VALUE_FNS, ...CONDITION_FNS]);
		for (const [name, rule] of Object.entries(this.template.Rules || {}))
			this.walk(rule, `Rules.${name}`, [...VALUE_FNS, ...CONDITION_FNS, ...RULE_FNS]);
		if (Object.keys(this.resources).length === 0)
			this.error('Resources', 'a template has at least one resource');
		for (const [id, res] of Object.entries(this.resources))
			this.resource(id, res);
		for (const [name, out] of Object.entries(this.template.Outputs || {}))
			this.output(name, out);
		return this.errors;
	}
}

function checkTemplate(db, template, givenParameters) {
	return new Checker(db, template).check(givenParameters || {});
}

module.exports = { checkTemplate };
