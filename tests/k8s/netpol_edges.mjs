#!/usr/bin/env node
// netpol_edges.mjs: the NetworkPolicies of a rendered overlay allow exactly the flow.
//
//   node netpol_edges.mjs RENDERED.yaml...
//   node netpol_edges.mjs --self-test RENDERED.yaml   (mutated policies must be caught)
//
// From the rendered NetworkPolicies and pod labels it computes every allowed connection
// (source pod -> destination pod:port/protocol) under Kubernetes NetworkPolicy semantics: a
// connection is allowed when the source's egress AND the destination's ingress allow it
// (a pod selected by no policy of a direction is open in that direction). From the
// topology inside the rendered ConfigMap and the Services it derives the flow:
//   requester -> every front; front -> its own region's hub; hub -> every provider;
//   provider -> auditor; every pod of the namespace -> cluster DNS (53/UDP, 53/TCP);
//   the monitoring namespace -> each role's metrics port (gRPC listen port + 1000)
// and asserts the two sets are equal, then names the edges that must never exist.
//
// Besides the rendered pods the model has stand-ins for the world around them: cluster DNS
// in kube-system, a Prometheus pod in a namespace labelled qmesh.io/monitoring=true, an
// unrelated pod in the same namespace, impostors in another namespace wearing qmesh labels,
// and an address on the internet. Every pod is probed on each declared port and on one
// undeclared port, so a rule that opens too much shows up as an extra edge.
import { loadRendered, topologyConfigMaps, parseTopology, matchSelector, matchMap, containerPorts, reporter, TOPOLOGY_KEY } from './lib/rendered.mjs';

const MONITORING_LABEL = 'qmesh.io/monitoring';
const UNDECLARED_PORT = 31337;

function ipToInt(ip) {
  return ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}
function inCidr(ip, cidr) {
  if (ip.includes(':') || cidr.includes(':')) return false; // the model is IPv4 only
  const [net, bits] = cidr.split('/');
  const n = Number(bits);
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return (ipToInt(ip) & mask) === (ipToInt(net) & mask);
}

function buildModel(r) {
  const nsName = r.namespaces[0]?.metadata?.name ?? r.namespaceNames[0];
  if (!nsName) throw new Error('no namespace in the rendered output');
  const namespaces = new Map();
  const addNs = (name, labels = {}) => namespaces.set(name, { 'kubernetes.io/metadata.name': name, ...labels });
  addNs(nsName, r.namespaces.find((n) => n.metadata.name === nsName)?.metadata?.labels);
  addNs('kube-system');
  addNs('monitoring', { [MONITORING_LABEL]: 'true' });
  addNs('elsewhere');

  let ipSeq = 10;
  const pods = [];
  const addPod = (p) => pods.push({ ip: `10.244.0.${ipSeq++}`, external: p.namespace !== nsName, ...p });
  for (const w of r.workloads) {
    if ((w.namespace ?? nsName) !== nsName) throw new Error(`${w.kind} ${w.name} is in namespace ${w.namespace}, not ${nsName}`);
    addPod({ id: w.name, namespace: nsName, labels: w.labels, ports: containerPorts(w.spec), workload: w });
  }
  // The requester's policy must hold even in an overlay that renders no requester Job.
  if (!r.workloads.some((w) => w.labels['app.kubernetes.io/component'] === 'requester')) {
    addPod({ id: 'requester(stand-in)', namespace: nsName, labels: { 'app.kubernetes.io/name': 'qmesh', 'app.kubernetes.io/component': 'requester', 'app.kubernetes.io/instance': 'requester' }, ports: [] });
  }
  addPod({ id: 'stranger', namespace: nsName, labels: { app: 'stranger' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], stranger: true });
  addPod({ id: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] });
  addPod({ id: 'prometheus', namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' }, ports: [{ name: 'web', port: 9090, protocol: 'TCP' }] });
  addPod({ id: 'impostor-requester', namespace: 'elsewhere', labels: { 'app.kubernetes.io/name': 'qmesh', 'app.kubernetes.io/component': 'requester', 'app.kubernetes.io/instance': 'requester' }, ports: [] });
  addPod({ id: 'impostor-hub', namespace: 'elsewhere', labels: { 'app.kubernetes.io/name': 'qmesh', 'app.kubernetes.io/component': 'hub', 'app.kubernetes.io/instance': 'hub-a' }, ports: [] });
  pods.push({ id: 'internet', namespace: null, ip: '203.0.113.10', labels: {}, ports: [{ name: 'https', port: 443, protocol: 'TCP' }], external: true, notPod: true });
  return { nsName, namespaces, pods };
}

function peerMatches(peer, policyNs, pod, model) {
  if (peer.ipBlock) {
    if (!inCidr(pod.ip, peer.ipBlock.cidr)) return false;
    return !(peer.ipBlock.except ?? []).some((c) => inCidr(pod.ip, c));
  }
  if (pod.notPod) return false; // selectors select pods only
  if (peer.namespaceSelector) {
    if (!matchSelector(peer.namespaceSelector, model.namespaces.get(pod.namespace))) return false;
  } else if (pod.namespace !== policyNs) {
    return false;
  }
  if (peer.podSelector) return matchSelector(peer.podSelector, pod.labels);
  return true;
}

function portMatches(rulePorts, dst, port, protocol) {
  if (!rulePorts || rulePorts.length === 0) return true;
  return rulePorts.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') {
      return dst.ports.some((cp) => cp.name === p.port && cp.port === port && cp.protocol === protocol);
    }
    const end = p.endPort ?? p.port;
    return port >= p.port && port <= end;
  });
}

function ruleAllows(rule, peersKey, policyNs, peer, dst, port, protocol, model) {
  const peers = rule[peersKey];
  const peerOk = !peers || peers.length === 0 || peers.some((x) => peerMatches(x, policyNs, peer, model));
  return peerOk && portMatches(rule.ports, dst, port, protocol);
}

function policyTypes(np) {
  if (np.spec.policyTypes) return np.spec.policyTypes;
  return np.spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
}

function allowed(model, policies, src, dst, port, protocol) {
  const side = (pod, type, key, peer) => {
    if (pod.external) return true; // policies of other namespaces are not ours to model
    const selecting = policies.filter((np) => (np.metadata.namespace ?? model.nsName) === pod.namespace
      && policyTypes(np).includes(type) && matchSelector(np.spec.podSelector ?? {}, pod.labels));
    if (selecting.length === 0) return true;
    return selecting.some((np) => (np.spec[key] ?? []).some((rule) =>
      ruleAllows(rule, key === 'egress' ? 'to' : 'from', np.metadata.namespace ?? model.nsName, peer, dst, port, protocol, model)));
  };
  return side(src, 'Egress', 'egress', dst) && side(dst, 'Ingress', 'ingress', src);
}

const edgeKey = (src, dst, port, protocol) => `${src} -> ${dst}:${port}/${protocol}`;

function computeEdges(model, policies) {
  const edges = new Set();
  for (const src of model.pods) {
    if (src.notPod) continue;
    for (const dst of model.pods) {
      if (src === dst) continue;
      const probes = [...dst.ports.map((p) => [p.port, p.protocol]), [UNDECLARED_PORT, 'TCP'], [UNDECLARED_PORT, 'UDP']];
      for (const [port, protocol] of probes) {
        if (src.external && dst.external) continue;
        if (allowed(model, policies, src, dst, port, protocol)) edges.add(edgeKey(src.id, dst.id, port, protocol));
      }
    }
  }
  return edges;
}

function expectedEdges(r, model, topo) {
  const problems = [];
  const edges = new Set();
  const podOfWorkload = new Map(model.pods.filter((p) => p.workload).map((p) => [p.workload, p]));
  // resolve: the pod and container port behind an advertised host:port (Service DNS name).
  const resolve = (inst) => {
    const svc = r.services.find((s) => s.metadata.name === inst.advertise.host);
    if (!svc) {
      problems.push(`${inst.id}: no Service named "${inst.advertise.host}" (its advertised host)`);
      return null;
    }
    const sp = (svc.spec.ports ?? []).find((p) => p.port === inst.advertise.port);
    if (!sp) {
      problems.push(`${inst.id}: Service ${svc.metadata.name} has no port ${inst.advertise.port}`);
      return null;
    }
    const ws = r.workloads.filter((w) => matchMap(svc.spec.selector, w.labels));
    if (ws.length !== 1) {
      problems.push(`${inst.id}: Service ${svc.metadata.name} selects ${ws.length} workloads (${ws.map((w) => w.name).join(', ')}), expected 1`);
      return null;
    }
    const pod = podOfWorkload.get(ws[0]);
    const target = sp.targetPort ?? sp.port;
    const cp = pod.ports.find((p) => (typeof target === 'string' ? p.name === target : p.port === target) && p.protocol === (sp.protocol ?? 'TCP'));
    if (!cp) {
      problems.push(`${inst.id}: Service ${svc.metadata.name} targets port ${target}, which ${ws[0].name} does not declare`);
      return null;
    }
    if (cp.port !== inst.listen.port) problems.push(`${inst.id}: Service reaches container port ${cp.port}, but the topology listens on ${inst.listen.port}`);
    return { pod, port: cp.port, protocol: cp.protocol, inst };
  };
  const byId = new Map(topo.instances.map((i) => [i.id, resolve(i)]));
  const requesters = model.pods.filter((p) => !p.external && p.labels['app.kubernetes.io/component'] === 'requester');
  const add = (src, dst) => { if (src && dst) edges.add(edgeKey(src.id, dst.pod.id, dst.port, dst.protocol)); };
  for (const region of topo.regions) {
    const front = byId.get(region.front.id);
    const hub = byId.get(region.hub.id);
    for (const q of requesters) add(q, front);
    add(front?.pod, hub);
    for (const p of topo.providers) add(hub?.pod, byId.get(p.id));
  }
  for (const p of topo.providers) add(byId.get(p.id)?.pod, byId.get(topo.auditor.id));
  const dns = model.pods.find((p) => p.id === 'kube-dns');
  for (const src of model.pods.filter((p) => !p.external)) {
    edges.add(edgeKey(src.id, dns.id, 53, 'UDP'));
    edges.add(edgeKey(src.id, dns.id, 53, 'TCP'));
  }
  for (const inst of topo.instances) {
    const x = byId.get(inst.id);
    if (x) edges.add(edgeKey('prometheus', x.pod.id, inst.listen.port + 1000, 'TCP'));
  }
  return { edges, problems, byId };
}

// analyze: every check of one rendered overlay, as [{name, problems}].
function analyze(r, tag, policies = r.networkPolicies) {
  const out = [];
  const check = (name, problems) => out.push({ name: `${tag}: ${name}`, problems });
  const cms = topologyConfigMaps(r);
  if (cms.length !== 1) {
    check('one topology ConfigMap', [`found ${cms.length}`]);
    return out;
  }
  const topo = parseTopology(cms[0].data[TOPOLOGY_KEY]);
  const model = buildModel(r);
  const actual = computeEdges(model, policies);
  const { edges: expected, problems, byId } = expectedEdges(r, model, topo);
  check('every topology instance resolves through its Service to one workload', problems);

  const extra = [...actual].filter((e) => !expected.has(e)).sort();
  const missing = [...expected].filter((e) => !actual.has(e)).sort();
  check(`allowed edges == the flow (${expected.size} edges)`, [
    ...extra.map((e) => `allowed but not in the flow: ${e}`),
    ...missing.map((e) => `in the flow but denied: ${e}`),
  ]);

  // The edges that must never exist, named one by one.
  const podsOf = (role) => topo.instances.filter((i) => i.role === role).map((i) => byId.get(i.id)?.pod.id).filter(Boolean);
  const fronts = podsOf('front');
  const hubs = podsOf('hub');
  const providers = podsOf('provider');
  const auditors = podsOf('auditor');
  const src = (e) => e.split(' -> ')[0];
  const dst = (e) => e.split(' -> ')[1].split(':')[0];
  const from = (srcs) => [...actual].filter((e) => srcs.includes(src(e)));
  const to = (list, dsts) => list.filter((e) => dsts.includes(dst(e)));
  check('no front reaches a provider or the auditor', to(from(fronts), [...providers, ...auditors]));
  check('no hub reaches the auditor or a front', to(from(hubs), [...auditors, ...fronts]));
  for (const region of topo.regions) {
    const f = byId.get(region.front.id)?.pod.id;
    const otherHubs = topo.regions.filter((x) => x !== region).map((x) => byId.get(x.hub.id)?.pod.id);
    check(`front ${region.front.id} reaches no other region's hub`, to(from([f]), otherHubs));
  }
  check('the auditor reaches nothing but DNS', from(auditors).filter((e) => dst(e) !== 'kube-dns'));
  check('providers reach nothing but the auditor and DNS', from(providers).filter((e) => dst(e) !== 'kube-dns' && !auditors.includes(dst(e))));
  check('nothing reaches the internet', [...actual].filter((e) => dst(e) === 'internet'));
  check('impostors in another namespace and strangers reach no qmesh pod',
    [...actual].filter((e) => /^(impostor-[a-z]+|stranger)$/.test(src(e)) && dst(e) !== 'kube-dns'));
  check('monitoring reaches metrics ports only',
    from(['prometheus']).filter((e) => !topo.instances.some((i) => e === edgeKey('prometheus', byId.get(i.id)?.pod.id, i.listen.port + 1000, 'TCP'))));
  return out;
}

// Mutations of the real policies that the checks above must catch (a test of the test).
const npNamed = (ps, name) => {
  const np = ps.find((p) => p.metadata.name === name);
  if (!np) throw new Error(`self-test: no NetworkPolicy ${name}`);
  return np;
};
const MUTATIONS = [
  {
    what: 'the auditor policy forgets Egress, and the namespace-wide deny and DNS policies are gone',
    expect: 'the auditor reaches nothing but DNS',
    apply: (ps) => {
      npNamed(ps, 'qmesh-auditor').spec.policyTypes = ['Ingress'];
      return ps.filter((p) => !['qmesh-default-deny', 'qmesh-allow-dns'].includes(p.metadata.name));
    },
  },
  {
    what: 'front nuvl-a may reach any hub, and hub-b accepts any front',
    expect: "front NUVL_A reaches no other region's hub",
    apply: (ps) => {
      npNamed(ps, 'qmesh-nuvl-a').spec.egress[0].to = [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'hub' } } }];
      npNamed(ps, 'qmesh-nuvl-a').spec.egress[0].ports.push({ protocol: 'TCP', port: 8101 });
      npNamed(ps, 'qmesh-hub-b').spec.ingress[0].from = [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'front' } } }];
      return ps;
    },
  },
  {
    what: 'front nuvl-a may also reach provider-a',
    expect: 'no front reaches a provider or the auditor',
    apply: (ps) => {
      npNamed(ps, 'qmesh-nuvl-a').spec.egress.push({ to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'provider-a' } } }] });
      npNamed(ps, 'qmesh-provider-a').spec.ingress[0].from.push({ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'front' } } });
      return ps;
    },
  },
  {
    what: 'hub-a may reach every port of every provider',
    expect: 'allowed edges == the flow',
    apply: (ps) => {
      npNamed(ps, 'qmesh-hub-a').spec.egress = [{ to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'provider' } } }] }];
      for (const p of ['qmesh-provider-a', 'qmesh-provider-b', 'qmesh-provider-c']) delete npNamed(ps, p).spec.ingress[0].ports;
      return ps;
    },
  },
  {
    what: 'provider-b accepts its port from any namespace',
    expect: 'impostors in another namespace and strangers reach no qmesh pod',
    apply: (ps) => {
      npNamed(ps, 'qmesh-provider-b').spec.ingress[0].from.push({ namespaceSelector: {} });
      return ps;
    },
  },
  {
    what: 'the requester loses region b',
    expect: 'allowed edges == the flow',
    apply: (ps) => {
      npNamed(ps, 'qmesh-requester').spec.egress.pop();
      return ps;
    },
  },
  {
    what: 'pods may reach the internet on 443',
    expect: 'nothing reaches the internet',
    apply: (ps) => {
      npNamed(ps, 'qmesh-allow-dns').spec.egress.push({ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }], ports: [{ protocol: 'TCP', port: 443 }] });
      return ps;
    },
  },
];

const rep = reporter();
const args = process.argv.slice(2);
if (args[0] === '--self-test') {
  if (args.length !== 2) {
    console.error('usage: netpol_edges.mjs --self-test RENDERED.yaml');
    process.exit(2);
  }
  const r = loadRendered(args[1]);
  const clean = analyze(r, 'self-test');
  rep.check('self-test: the unmutated policies pass', clean.filter((c) => c.problems.length).map((c) => c.name));
  for (const m of MUTATIONS) {
    const ps = m.apply(structuredClone(r.networkPolicies));
    const results = analyze(r, 'mutant', ps);
    const caught = results.filter((c) => c.problems.length && c.name.startsWith(`mutant: ${m.expect}`));
    rep.check(`self-test: caught "${m.what}" (${m.expect})`, caught.length ? [] : [
      'not caught; failing checks were: ' + (results.filter((c) => c.problems.length).map((c) => c.name).join('; ') || 'none')]);
  }
  rep.done();
}
if (args.length === 0) {
  console.error('usage: netpol_edges.mjs RENDERED.yaml... | netpol_edges.mjs --self-test RENDERED.yaml');
  process.exit(2);
}
for (const file of args) {
  const tag = file.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
  for (const c of analyze(loadRendered(file), tag)) rep.check(c.name, c.problems);
}
rep.done();
