// Reading a rendered overlay (`kubectl kustomize` output) and the topology inside it.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { parseDocuments } from './schema.mjs';

export const TOPOLOGY_KEY = 'topology.yaml';
export const TOPOLOGY_PATH = '/etc/qmesh/topology.yaml';

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod']);

// podTemplateOf: {metadata, spec} of the pods a workload object makes.
export function podTemplateOf(obj) {
  switch (obj.kind) {
    case 'Pod':
      return { metadata: obj.metadata ?? {}, spec: obj.spec ?? {} };
    case 'CronJob':
      return obj.spec?.jobTemplate?.spec?.template ?? { metadata: {}, spec: {} };
    default:
      return obj.spec?.template ?? { metadata: {}, spec: {} };
  }
}

export function loadRendered(file) {
  const objects = parseDocuments(readFileSync(file, 'utf8'), file).map((d) => d.object);
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const namespaces = byKind('Namespace');
  const nsNames = new Set(objects.map((o) => o.metadata?.namespace).filter(Boolean));
  const workloads = objects.filter((o) => WORKLOAD_KINDS.has(o.kind)).map((obj) => {
    const t = podTemplateOf(obj);
    return {
      kind: obj.kind,
      name: obj.metadata?.name,
      namespace: obj.metadata?.namespace,
      obj,
      labels: t.metadata?.labels ?? {},
      annotations: t.metadata?.annotations ?? {},
      spec: t.spec ?? {},
    };
  });
  return {
    file,
    objects,
    namespaces,
    namespaceNames: [...nsNames],
    workloads,
    services: byKind('Service'),
    networkPolicies: byKind('NetworkPolicy'),
    configMaps: byKind('ConfigMap'),
    secrets: byKind('Secret'),
    pdbs: byKind('PodDisruptionBudget'),
  };
}

// topologyConfigMaps: the ConfigMaps that carry topology.yaml.
export function topologyConfigMaps(r) {
  return r.configMaps.filter((c) => c.data && typeof c.data[TOPOLOGY_KEY] === 'string');
}

function hostPort(addr, what) {
  const m = /^(.*):(\d+)$/.exec(String(addr ?? ''));
  if (!m) throw new Error(`topology: ${what}: "${addr}" is not host:port`);
  return { host: m[1], port: Number(m[2]) };
}

// parseTopology: the parts of the qmesh topology schema the manifests depend on.
export function parseTopology(text) {
  const t = YAML.parse(text);
  const ep = (e, role, region) => {
    const listen = hostPort(e.listen, `${e.id}.listen`);
    const advertise = hostPort(e.advertise ?? e.listen, `${e.id}.advertise`);
    return { id: e.id, role, region, listen, advertise, raw: e };
  };
  const regions = (t.regions ?? []).map((r) => ({
    name: r.name,
    front: ep(r.front, 'front', r.name),
    hub: ep(r.hub, 'hub', r.name),
  }));
  const providers = (t.providers ?? []).map((p) => ep(p, 'provider'));
  const auditor = ep(t.auditor, 'auditor');
  const instances = [...regions.flatMap((r) => [r.front, r.hub]), ...providers, auditor];
  return {
    raw: t,
    regions,
    providers,
    auditor,
    instances,
    keysDir: t.keys_dir ?? '',
    quorum: t.quorum?.threshold ?? 2,
  };
}

// matchSelector: Kubernetes label-selector semantics (matchLabels and matchExpressions).
export function matchSelector(sel, labels) {
  if (!sel) return false;
  labels = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In': if (!has || !e.values.includes(labels[e.key])) return false; break;
      case 'NotIn': if (has && e.values.includes(labels[e.key])) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: throw new Error(`unknown selector operator ${e.operator}`);
    }
  }
  return true;
}

// A Service's selector is a plain map.
export function matchMap(sel, labels) {
  if (!sel || Object.keys(sel).length === 0) return false;
  return Object.entries(sel).every(([k, v]) => (labels ?? {})[k] === v);
}

export function containerPorts(spec) {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])].flatMap((c) =>
    (c.ports ?? []).map((p) => ({ name: p.name, port: p.containerPort, protocol: p.protocol ?? 'TCP', container: c.name })));
}

// Printing helpers shared by the checks.
export function reporter() {
  const state = { passed: 0, failed: 0 };
  return {
    state,
    check(name, problems) {
      if (problems.length === 0) {
        state.passed++;
        console.log(`ok   ${name}`);
      } else {
        state.failed++;
        console.log(`FAIL ${name}\n       ${problems.join('\n       ')}`);
      }
    },
    done() {
      console.log(`RESULT ${state.passed} ${state.failed}`);
      process.exit(state.failed ? 1 : 0);
    },
  };
}
