// Strict offline validation of Kubernetes objects, without a cluster.
//
// Two independent sources, both pinned in package.json:
//  - kubernetes-models: one module per apiVersion/kind with the OpenAPI schema compiled by
//    ajv. It decides which apiVersion/kind pairs exist, and checks types and required fields
//    at every depth. Its schemas do not reject unknown fields.
//  - @kubernetes/client-node: its generated model classes carry attributeTypeMap, the list
//    of every field of every type. Walking an object along these maps rejects any field the
//    API does not define, at any depth (the apiserver's strict field validation).
// Each error has a stable code, so tests can assert why an object was rejected:
//   yaml, unknown-kind, unknown-field, wrong-type, missing-required, invalid-value.
import * as Models from '@kubernetes/client-node/dist/gen/models/all.js';
import YAML from 'yaml';

const API_VERSION_RE = /^(?:([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/)?(v[1-9][0-9]*(?:(?:alpha|beta)[1-9][0-9]*)?)$/;
const KIND_RE = /^[A-Z][A-Za-z0-9]*$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function err(code, path, message) {
  return { code, path: path || '.', message };
}

// parseDocuments: multi-document YAML -> [{index, object}] or throws. YAML 1.1 as Go's
// sigs.k8s.io/yaml reads it (so `yes`, `on`, 0440 mean what the apiserver would see);
// duplicate keys are errors.
export function parseDocuments(text, name = '<input>') {
  const docs = YAML.parseAllDocuments(text, { version: '1.1', uniqueKeys: true, strict: true, prettyErrors: true });
  const out = [];
  docs.forEach((doc, index) => {
    const problems = [...doc.errors];
    if (problems.length) {
      const e = new Error(`${name}: document ${index + 1}: ${problems.map((p) => p.message).join('; ')}`);
      e.code = 'yaml';
      throw e;
    }
    const object = doc.toJS({ maxAliasCount: 100 });
    if (object === null || object === undefined) return; // empty document (e.g. a trailing ---)
    out.push({ index: index + 1, object });
  });
  return out;
}

// modelFor: the kubernetes-models class of apiVersion/kind, or null when no such pair exists.
const modelCache = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion} ${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  let cls = null;
  const m = API_VERSION_RE.exec(apiVersion);
  if (m && KIND_RE.test(kind)) {
    const group = m[1] || '';
    const version = m[3];
    const spec = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
    try {
      const mod = await import(spec);
      const c = mod[kind];
      if (c && c.apiVersion === apiVersion && c.kind === kind) cls = c;
    } catch (e) {
      if (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw e;
    }
  }
  modelCache.set(key, cls);
  return cls;
}

// fieldMapName: the client-node model holding the fields of apiVersion/kind.
function fieldMapName(apiVersion, kind) {
  const m = API_VERSION_RE.exec(apiVersion);
  if (!m) return null;
  const group = m[1] || '';
  const version = cap(m[3]);
  const prefix = group ? cap(group.split('.')[0]) : 'Core';
  for (const name of [`${version}${kind}`, `${prefix}${version}${kind}`]) {
    if (Models[name]?.attributeTypeMap) return name;
  }
  return null;
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
const describe = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Date ? 'timestamp' : typeof v);

// walk: rejects fields the type does not define, and values of the wrong shape.
// Scalar string fields may hold numbers (resource quantities do); kubernetes-models decides.
function walk(value, type, path, errors) {
  let m;
  if (value === null) {
    errors.push(err('wrong-type', path, `null where ${type} is expected (omit the field instead)`));
    return;
  }
  if (type === 'any' || type === 'object') return;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) {
      errors.push(err('wrong-type', path, `expected a list of ${m[1]}, got ${describe(value)}`));
      return;
    }
    value.forEach((v, i) => walk(v, m[1], `${path}[${i}]`, errors));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (!isPlainObject(value)) {
      errors.push(err('wrong-type', path, `expected a map of ${m[1]}, got ${describe(value)}`));
      return;
    }
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${path}.${k}`, errors);
    return;
  }
  switch (type) {
    case 'string':
    case 'Date':
    case 'V1MicroTime':
      if (typeof value === 'object' && !(value instanceof Date)) {
        errors.push(err('wrong-type', path, `expected a string, got ${describe(value)}`));
      }
      return;
    case 'number':
      if (typeof value !== 'number') errors.push(err('wrong-type', path, `expected a number, got ${describe(value)}`));
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(err('wrong-type', path, `expected a boolean, got ${describe(value)}`));
      return;
    case 'IntOrString':
      if (!(typeof value === 'string' || Number.isInteger(value))) {
        errors.push(err('wrong-type', path, `expected an integer or a string, got ${describe(value)}`));
      }
      return;
    default:
      break;
  }
  const cls = Models[type];
  if (!cls || !Array.isArray(cls.attributeTypeMap)) {
    errors.push(err('unknown-kind', path, `internal: no field map for type ${type}`));
    return;
  }
  if (!isPlainObject(value)) {
    errors.push(err('wrong-type', path, `expected an object (${type}), got ${describe(value)}`));
    return;
  }
  const fields = new Map(cls.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const p = path ? `${path}.${k}` : k;
    if (!fields.has(k)) {
      const near = [...fields.keys()].filter((f) => f.toLowerCase() === k.toLowerCase() || editDistance(f, k) <= 2);
      errors.push(err('unknown-field', p, `unknown field "${k}" in ${type}` + (near.length ? ` (did you mean ${near.join(', ')}?)` : '')));
      continue;
    }
    walk(v, fields.get(k), p, errors);
  }
}

function editDistance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function ajvPath(instancePath) {
  return instancePath.replace(/^\//, '').split('/').filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

function valueAt(obj, instancePath) {
  let v = obj;
  for (const seg of instancePath.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

const isBase64 = (s) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);

function fromAjv(e) {
  const path = ajvPath(e.instancePath || '');
  if (e.keyword === 'required') {
    const missing = e.params?.missingProperty;
    return err('missing-required', path ? `${path}.${missing}` : missing, `missing required field "${missing}"`);
  }
  if (e.keyword === 'type' || e.keyword === 'oneOf' || e.keyword === 'anyOf') {
    return err('wrong-type', path, e.message || e.keyword);
  }
  return err('invalid-value', path, `${e.keyword}: ${e.message || JSON.stringify(e.params)}`);
}

function checkMeta(obj, kind, errors) {
  const md = obj.metadata;
  if (!isPlainObject(md)) {
    errors.push(err('missing-required', 'metadata', 'missing required field "metadata"'));
    return;
  }
  if (typeof md.name !== 'string' || md.name === '') {
    if (!(typeof md.generateName === 'string' && md.generateName)) {
      errors.push(err('missing-required', 'metadata.name', 'missing required field "metadata.name"'));
    }
  } else if (md.name.length > 253 || !DNS_SUBDOMAIN_RE.test(md.name)) {
    errors.push(err('invalid-value', 'metadata.name', `"${md.name}" is not a DNS subdomain name`));
  }
  if (kind === 'Service' && typeof md.name === 'string' && !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(md.name)) {
    errors.push(err('invalid-value', 'metadata.name', `Service name "${md.name}" is not a DNS-1035 label`));
  }
  const labelMaps = [['metadata.labels', md.labels]];
  const tmpl = obj.spec?.template?.metadata ?? obj.spec?.jobTemplate?.spec?.template?.metadata;
  if (tmpl) labelMaps.push(['spec.template.metadata.labels', tmpl.labels]);
  for (const [where, labels] of labelMaps) {
    if (!isPlainObject(labels)) continue;
    for (const [k, v] of Object.entries(labels)) {
      const name = k.includes('/') ? k.slice(k.indexOf('/') + 1) : k;
      if (name.length > 63 || !LABEL_NAME_RE.test(name)) errors.push(err('invalid-value', `${where}.${k}`, `invalid label key "${k}"`));
      if (typeof v === 'string' && (v.length > 63 || !LABEL_VALUE_RE.test(v))) {
        errors.push(err('invalid-value', `${where}.${k}`, `invalid label value "${v}"`));
      }
    }
  }
}

// validateObject: all errors of one object (empty: valid).
export async function validateObject(obj) {
  const errors = [];
  if (!isPlainObject(obj)) return [err('wrong-type', '.', `a document must be an object, got ${describe(obj)}`)];
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || apiVersion === '') errors.push(err('missing-required', 'apiVersion', 'missing required field "apiVersion"'));
  if (typeof kind !== 'string' || kind === '') errors.push(err('missing-required', 'kind', 'missing required field "kind"'));
  if (errors.length) return errors;

  const cls = await modelFor(apiVersion, kind);
  const mapName = fieldMapName(apiVersion, kind);
  if (!cls || !mapName) {
    return [err('unknown-kind', 'apiVersion', `unknown apiVersion/kind "${apiVersion}" "${kind}"`)];
  }
  walk(obj, mapName, '', errors);
  try {
    new cls(structuredClone(obj)).validate();
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    for (const a of e.errors) {
      // Go's base64 (the apiserver's []byte decoding) skips line breaks, and kustomize
      // folds long Secret data into lines: judge "byte" values without them.
      if (a.keyword === 'format' && a.params?.format === 'byte') {
        const v = valueAt(obj, a.instancePath);
        if (typeof v === 'string' && isBase64(v.replace(/[\r\n]/g, ''))) continue;
      }
      errors.push(fromAjv(a));
    }
  }
  checkMeta(obj, kind, errors);
  const seen = new Set();
  return errors.filter((e) => {
    const k = `${e.code} ${e.path} ${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function objectName(obj) {
  const ns = obj?.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj?.apiVersion ?? '?'} ${obj?.kind ?? '?'} ${ns}${obj?.metadata?.name ?? '?'}`;
}
