#!/usr/bin/env node
// policy.mjs: what a rendered overlay must promise beyond its schema.
//
//   node policy.mjs RENDERED.yaml...
//
// Per overlay: every topology instance has its own workload and its own ClusterIP Service
// named as advertised; one topology ConfigMap mounted everywhere; key isolation (a
// provider mounts only its own private key, the auditor only public keys, fronts, hubs and
// the requester no Secret at all); native gRPC probes on the listen port; the restricted
// Pod Security profile; requests and limits; app.kubernetes.io labels; PodDisruptionBudgets;
// graceful termination; Prometheus annotations on gRPC port + 1000; the auditor's volume.
import { posix } from 'node:path';
import { loadRendered, topologyConfigMaps, parseTopology, matchSelector, matchMap, containerPorts, reporter, TOPOLOGY_KEY, TOPOLOGY_PATH } from './lib/rendered.mjs';

const ROLE_COMMAND = { front: 'qmesh-front', hub: 'qmesh-hub', provider: 'qmesh-provider', auditor: 'qmesh-auditor' };
const ROLE_KIND = { front: 'Deployment', hub: 'Deployment', provider: 'Deployment', auditor: 'StatefulSet' };
const AUDIT_DIR = '/var/lib/qmesh';
const AUDIT_LOG = '/var/lib/qmesh/audit.log';
const REQUIRED_LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/part-of', 'app.kubernetes.io/managed-by'];
// Volume types the restricted Pod Security profile allows.
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

const allContainers = (spec) => [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
const argValue = (args, flag) => {
  const i = (args ?? []).indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const b64 = (s) => Buffer.from(String(s).replace(/[\r\n]/g, ''), 'base64').toString('utf8');

// secretUse: every way a pod spec reaches Secrets: [{secret, keys (null = all), mountPaths}].
function secretUse(spec) {
  const uses = [];
  const mountsOf = (volName) => allContainers(spec).flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.name === volName).map((m) => ({ ...m, container: c.name })));
  for (const v of spec.volumes ?? []) {
    if (v.secret) uses.push({ secret: v.secret.secretName, keys: v.secret.items ? v.secret.items.map((i) => i.key) : null, items: v.secret.items ?? null, mounts: mountsOf(v.name), volume: v.name });
    for (const src of v.projected?.sources ?? []) {
      if (src.secret) uses.push({ secret: src.secret.name, keys: src.secret.items ? src.secret.items.map((i) => i.key) : null, items: src.secret.items ?? null, mounts: mountsOf(v.name), volume: v.name });
    }
  }
  for (const c of allContainers(spec)) {
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) uses.push({ secret: e.valueFrom.secretKeyRef.name, keys: [e.valueFrom.secretKeyRef.key], items: null, mounts: [], env: e.name });
    for (const e of c.envFrom ?? []) if (e.secretRef) uses.push({ secret: e.secretRef.name, keys: null, items: null, mounts: [], env: '*' });
  }
  for (const s of spec.imagePullSecrets ?? []) uses.push({ secret: s.name, keys: null, items: null, mounts: [], pull: true });
  return uses;
}

function restrictedProblems(w) {
  const p = [];
  const s = w.spec;
  const psc = s.securityContext ?? {};
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC']) if (s[host]) p.push(`${host} is set`);
  for (const v of s.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (!RESTRICTED_VOLUMES.has(type)) p.push(`volume ${v.name} has type ${type}`);
  }
  if (psc.runAsUser === 0) p.push('pod runAsUser 0');
  for (const c of allContainers(s)) {
    const sc = c.securityContext ?? {};
    const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    if (nonRoot !== true) p.push(`${c.name}: runAsNonRoot is not true`);
    if ((sc.runAsUser ?? psc.runAsUser) === 0) p.push(`${c.name}: runs as uid 0`);
    if ((sc.runAsUser ?? psc.runAsUser) === undefined) p.push(`${c.name}: no runAsUser (the image's USER would decide)`);
    if (sc.allowPrivilegeEscalation !== false) p.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (sc.privileged) p.push(`${c.name}: privileged`);
    if (sc.readOnlyRootFilesystem !== true) p.push(`${c.name}: readOnlyRootFilesystem is not true`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) p.push(`${c.name}: capabilities.drop lacks ALL`);
    const added = (sc.capabilities?.add ?? []).filter((x) => x !== 'NET_BIND_SERVICE');
    if (added.length) p.push(`${c.name}: adds capabilities ${added.join(', ')}`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (!['RuntimeDefault', 'Localhost'].includes(seccomp)) p.push(`${c.name}: seccompProfile is ${seccomp ?? 'unset'}, not RuntimeDefault`);
    if (seccomp === 'Localhost') p.push(`${c.name}: seccompProfile Localhost, expected RuntimeDefault`);
    for (const port of c.ports ?? []) if (port.hostPort) p.push(`${c.name}: hostPort ${port.hostPort}`);
    const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath);
    if (!mounts.includes('/tmp')) p.push(`${c.name}: no writable /tmp (emptyDir) for a read-only root filesystem`);
  }
  const tmp = (s.volumes ?? []).find((v) => allContainers(s).some((c) => (c.volumeMounts ?? []).some((m) => m.name === v.name && m.mountPath === '/tmp')));
  if (tmp && !tmp.emptyDir) p.push(`/tmp is volume ${tmp.name}, not an emptyDir`);
  return p;
}

function checkOverlay(file, rep) {
  const tag = file.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
  const check = (name, problems) => rep.check(`${tag}: ${name}`, problems);
  const r = loadRendered(file);

  // ---- the topology ConfigMap ----
  const cms = topologyConfigMaps(r);
  check('exactly one ConfigMap carries topology.yaml', cms.length === 1 ? [] : [`found ${cms.length}`]);
  if (cms.length !== 1) return;
  const cmName = cms[0].metadata.name;
  const topo = parseTopology(cms[0].data[TOPOLOGY_KEY]);
  {
    const p = [];
    for (const w of r.workloads) {
      const vol = (w.spec.volumes ?? []).find((v) => v.configMap?.name === cmName);
      if (!vol) { p.push(`${w.name}: does not mount ConfigMap ${cmName}`); continue; }
      for (const c of w.spec.containers ?? []) {
        const m = (c.volumeMounts ?? []).find((x) => x.name === vol.name);
        if (!m || m.mountPath !== TOPOLOGY_PATH || m.subPath !== TOPOLOGY_KEY || m.readOnly !== true) {
          p.push(`${w.name}/${c.name}: topology not mounted read-only at ${TOPOLOGY_PATH}`);
        }
        if (argValue(c.args, '--topology') !== TOPOLOGY_PATH) p.push(`${w.name}/${c.name}: args lack --topology ${TOPOLOGY_PATH}`);
      }
    }
    for (const s of r.objects) {
      if (s.kind === 'ConfigMap' && s !== cms[0]) p.push(`unexpected ConfigMap ${s.metadata.name}`);
    }
    check('every workload reads the one topology ConfigMap', p);
  }
  {
    const p = [];
    for (const inst of topo.instances) {
      if (inst.listen.host !== '0.0.0.0') p.push(`${inst.id}: listens on ${inst.listen.host}, not 0.0.0.0 (unreachable from other pods)`);
      if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(inst.advertise.host)) p.push(`${inst.id}: advertises "${inst.advertise.host}", not a Service name`);
      if (inst.role === 'provider') {
        const f = inst.raw.score_secret_file;
        if (inst.raw.score_secret !== undefined) p.push(`${inst.id}: inline score_secret in the cluster topology`);
        if (!f) p.push(`${inst.id}: no score_secret_file`);
      }
    }
    if (!topo.keysDir) p.push('no keys_dir');
    check('the topology listens on 0.0.0.0, advertises Service names, keeps secrets in files', p);
  }

  // ---- one workload and one Service per instance ----
  const wOf = new Map();
  {
    const p = [];
    for (const inst of topo.instances) {
      const ws = r.workloads.filter((w) => (w.spec.containers ?? []).some((c) => argValue(c.args, '--id') === inst.id));
      if (ws.length !== 1) { p.push(`${inst.id}: ${ws.length} workloads run --id ${inst.id}`); continue; }
      const w = ws[0];
      wOf.set(inst.id, w);
      if (w.kind !== ROLE_KIND[inst.role]) p.push(`${inst.id}: is a ${w.kind}, expected ${ROLE_KIND[inst.role]}`);
      const c = w.spec.containers[0];
      if (w.spec.containers.length !== 1) p.push(`${inst.id}: ${w.spec.containers.length} containers`);
      if (JSON.stringify(c.command) !== JSON.stringify([ROLE_COMMAND[inst.role]])) p.push(`${inst.id}: command ${JSON.stringify(c.command)}, expected [${ROLE_COMMAND[inst.role]}]`);
      const grpc = (c.ports ?? []).find((x) => x.name === 'grpc');
      if (grpc?.containerPort !== inst.listen.port) p.push(`${inst.id}: grpc containerPort ${grpc?.containerPort}, topology listens on ${inst.listen.port}`);
      if (w.labels['app.kubernetes.io/component'] !== inst.role) p.push(`${inst.id}: component label ${w.labels['app.kubernetes.io/component']}, expected ${inst.role}`);
      if (inst.region && w.labels['qmesh.io/region'] !== inst.region) p.push(`${inst.id}: region label ${w.labels['qmesh.io/region']}, expected ${inst.region}`);
      const svc = r.services.find((s) => s.metadata.name === inst.advertise.host);
      if (!svc) { p.push(`${inst.id}: no Service ${inst.advertise.host}`); continue; }
      if ((svc.spec.type ?? 'ClusterIP') !== 'ClusterIP' || svc.spec.clusterIP === 'None') p.push(`${inst.id}: Service ${svc.metadata.name} is not a ClusterIP Service`);
      const sp = (svc.spec.ports ?? []).find((x) => x.port === inst.advertise.port);
      if (!sp) p.push(`${inst.id}: Service ${svc.metadata.name} lacks port ${inst.advertise.port}`);
      else if (sp.targetPort !== 'grpc' && sp.targetPort !== inst.listen.port) p.push(`${inst.id}: Service targetPort ${sp.targetPort}`);
      const selected = r.workloads.filter((x) => matchMap(svc.spec.selector, x.labels));
      if (selected.length !== 1 || selected[0] !== w) p.push(`${inst.id}: Service ${svc.metadata.name} selects ${selected.map((x) => x.name).join(', ') || 'nothing'}`);
    }
    const ids = new Set(topo.instances.map((i) => i.id));
    for (const w of r.workloads) {
      const comp = w.labels['app.kubernetes.io/component'];
      if (comp === 'requester') continue;
      const id = argValue(w.spec.containers?.[0]?.args, '--id');
      if (!ids.has(id)) p.push(`${w.kind} ${w.name}: runs --id ${id}, which the topology does not declare`);
    }
    const advertised = new Set(topo.instances.map((i) => i.advertise.host));
    for (const s of r.services) if (!advertised.has(s.metadata.name)) p.push(`Service ${s.metadata.name}: advertised by no instance`);
    check(`one workload and one ClusterIP Service per instance (${topo.instances.length})`, p);
  }
  {
    const p = [];
    const fh = topo.instances.filter((i) => i.role === 'front' || i.role === 'hub');
    for (const inst of fh) {
      const w = wOf.get(inst.id);
      if (w && w.obj.spec.replicas !== undefined && w.obj.spec.replicas < 1) p.push(`${inst.id}: replicas ${w.obj.spec.replicas}`);
      if (w && w.obj.spec.strategy?.rollingUpdate?.maxUnavailable !== 0) p.push(`${inst.id}: rolling updates may drop below the desired replicas`);
    }
    check('fronts and hubs are scalable Deployments that roll without losing capacity', p);
  }

  // ---- probes, resources, termination, metrics ----
  {
    const p = [];
    for (const inst of topo.instances) {
      const w = wOf.get(inst.id);
      if (!w) continue;
      const c = w.spec.containers[0];
      for (const probe of ['readinessProbe', 'livenessProbe']) {
        const pr = c[probe];
        if (!pr?.grpc) p.push(`${inst.id}: ${probe} is not a native gRPC probe`);
        else if (pr.grpc.port !== inst.listen.port) p.push(`${inst.id}: ${probe} port ${pr.grpc.port}, listen port ${inst.listen.port}`);
        if (pr && (pr.exec || pr.httpGet || pr.tcpSocket)) p.push(`${inst.id}: ${probe} mixes handlers`);
      }
      if (c.startupProbe && c.startupProbe.grpc?.port !== inst.listen.port) p.push(`${inst.id}: startupProbe is not gRPC on ${inst.listen.port}`);
    }
    check('native gRPC (grpc.health.v1) readiness and liveness probes on the listen port', p);
  }
  {
    const p = [];
    for (const w of r.workloads) {
      for (const c of allContainers(w.spec)) {
        for (const k of ['requests', 'limits']) for (const res of ['cpu', 'memory']) {
          if (c.resources?.[k]?.[res] === undefined) p.push(`${w.name}/${c.name}: no ${k}.${res}`);
        }
      }
    }
    check('every container has cpu and memory requests and limits', p);
  }
  {
    const p = [];
    for (const w of r.workloads) {
      const s = w.spec;
      if (!(s.terminationGracePeriodSeconds >= 10)) p.push(`${w.name}: terminationGracePeriodSeconds ${s.terminationGracePeriodSeconds}`);
      if (s.enableServiceLinks !== false) p.push(`${w.name}: enableServiceLinks is not false (Service env vars such as <ID>_PORT would override qmesh's ports)`);
      if (s.automountServiceAccountToken !== false) p.push(`${w.name}: mounts a service account token it does not need`);
      for (const c of allContainers(s)) if (c.lifecycle?.preStop) p.push(`${w.name}/${c.name}: preStop hook (SIGTERM alone drains)`);
      const used = new Set(allContainers(s).flatMap((c) => (c.env ?? []).map((e) => e.name)));
      for (const n of used) if (/_PORT$/.test(n)) p.push(`${w.name}: sets ${n}, a qmesh port override`);
    }
    check('graceful termination on SIGTERM, no service links, no API token', p);
  }
  {
    const p = [];
    for (const inst of topo.instances) {
      const w = wOf.get(inst.id);
      if (!w) continue;
      const want = inst.listen.port + 1000;
      const a = w.annotations;
      if (a['prometheus.io/scrape'] !== 'true') p.push(`${inst.id}: prometheus.io/scrape is not "true"`);
      if (a['prometheus.io/port'] !== String(want)) p.push(`${inst.id}: prometheus.io/port ${a['prometheus.io/port']}, expected ${want}`);
      if (a['prometheus.io/path'] !== '/metrics') p.push(`${inst.id}: prometheus.io/path ${a['prometheus.io/path']}`);
      const mp = containerPorts(w.spec).find((x) => x.name === 'metrics');
      if (mp?.port !== want) p.push(`${inst.id}: metrics containerPort ${mp?.port}, expected ${want}`);
    }
    check('Prometheus scrape annotations on gRPC port + 1000', p);
  }

  // ---- security ----
  {
    const p = r.workloads.flatMap((w) => restrictedProblems(w).map((x) => `${w.name}: ${x}`));
    const ns = r.namespaces;
    if (ns.length !== 1) p.push(`${ns.length} Namespace objects rendered, expected 1`);
    for (const n of ns) {
      if (n.metadata.labels?.['pod-security.kubernetes.io/enforce'] !== 'restricted') p.push(`Namespace ${n.metadata.name} does not enforce the restricted Pod Security Standard`);
    }
    for (const o of r.objects) {
      if (o.kind !== 'Namespace' && o.metadata?.namespace !== ns[0]?.metadata?.name) p.push(`${o.kind} ${o.metadata?.name} in namespace ${o.metadata?.namespace}`);
    }
    check('restricted pod security profile (non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp)', p);
  }
  {
    const p = [];
    const byName = new Map(r.secrets.map((s) => [s.metadata.name, s]));
    const owner = new Map(); // secret name -> workload names
    for (const w of r.workloads) for (const u of secretUse(w.spec)) {
      owner.set(u.secret, [...new Set([...(owner.get(u.secret) ?? []), w.name])]);
    }
    for (const w of r.workloads) {
      const comp = w.labels['app.kubernetes.io/component'];
      const uses = secretUse(w.spec);
      const id = argValue(w.spec.containers?.[0]?.args, '--id');
      if (comp === 'front' || comp === 'hub' || comp === 'requester') {
        for (const u of uses) p.push(`${w.name} (${comp}) reaches Secret ${u.secret}: ${comp}s hold no key`);
      } else if (comp === 'provider') {
        const names = new Set(uses.map((u) => u.secret));
        if (names.size !== 1) { p.push(`${w.name}: uses ${names.size} Secrets, expected its own one`); continue; }
        const [name] = names;
        if ((owner.get(name) ?? []).some((x) => x !== w.name)) p.push(`${w.name}: its Secret ${name} is also used by ${owner.get(name).filter((x) => x !== w.name).join(', ')}`);
        const inst = topo.providers.find((x) => x.id === id);
        const keyFile = inst?.raw.signing_key || posix.join(topo.keysDir, `${id}.key`);
        const secretFile = inst?.raw.score_secret_file;
        const files = [];
        for (const u of uses) {
          if (u.env || u.pull) { p.push(`${w.name}: Secret ${name} reaches it as environment`); continue; }
          if (!u.items) { p.push(`${w.name}: mounts all of Secret ${name} (list items)`); continue; }
          for (const m of u.mounts) for (const it of u.items) files.push({ key: it.key, path: posix.join(m.mountPath, it.path) });
        }
        const want = [{ key: `${id}.key`, path: keyFile }, { key: 'score_secret', path: secretFile }];
        const fmtF = (xs) => xs.map((x) => `${x.key}->${x.path}`).sort().join(', ');
        if (fmtF(files) !== fmtF(want)) p.push(`${w.name}: mounts ${fmtF(files)}; expected exactly ${fmtF(want)}`);
        const s = byName.get(name);
        if (s) {
          const keys = Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) }).sort();
          if (keys.join(',') !== [`${id}.key`, 'score_secret'].sort().join(',')) p.push(`Secret ${name} holds ${keys.join(', ')}; expected ${id}.key and score_secret only`);
          const pem = s.data?.[`${id}.key`] ? b64(s.data[`${id}.key`]) : s.stringData?.[`${id}.key`] ?? '';
          if (!/^-----BEGIN PRIVATE KEY-----/.test(pem)) p.push(`Secret ${name}: ${id}.key is not a PEM private key`);
        }
      } else if (comp === 'auditor') {
        const names = new Set(uses.map((u) => u.secret));
        if (names.size !== 1) { p.push(`${w.name}: uses ${names.size} Secrets, expected one of public keys`); continue; }
        const [name] = names;
        if ((owner.get(name) ?? []).some((x) => x !== w.name)) p.push(`${w.name}: its Secret ${name} is also used by ${owner.get(name).filter((x) => x !== w.name).join(', ')}`);
        const wantKeys = topo.providers.map((x) => `${x.id}.pub`).sort();
        for (const u of uses) {
          if (u.env || u.pull) { p.push(`${w.name}: Secret ${name} reaches it as environment`); continue; }
          if (u.keys && u.keys.some((k) => !k.endsWith('.pub'))) p.push(`${w.name}: projects ${u.keys.filter((k) => !k.endsWith('.pub')).join(', ')}`);
          for (const m of u.mounts) if (m.mountPath !== topo.keysDir) p.push(`${w.name}: public keys at ${m.mountPath}, keys_dir is ${topo.keysDir}`);
        }
        const s = byName.get(name);
        if (s) {
          const keys = Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) }).sort();
          if (keys.join(',') !== wantKeys.join(',')) p.push(`Secret ${name} holds ${keys.join(', ')}; expected ${wantKeys.join(', ')}`);
          for (const k of keys) {
            const pem = s.data?.[k] ? b64(s.data[k]) : s.stringData?.[k] ?? '';
            if (!/^-----BEGIN PUBLIC KEY-----/.test(pem) || /PRIVATE/.test(pem)) p.push(`Secret ${name}: ${k} is not a PEM public key`);
          }
        }
      } else {
        p.push(`${w.kind} ${w.name}: unknown component ${comp}`);
      }
    }
    // No private key in any Secret but a provider's own.
    for (const s of r.secrets) {
      const users = owner.get(s.metadata.name) ?? [];
      const providerOwned = users.length === 1 && r.workloads.find((w) => w.name === users[0])?.labels['app.kubernetes.io/component'] === 'provider';
      for (const [k, v] of Object.entries(s.data ?? {})) {
        if (/PRIVATE KEY/.test(b64(v)) && !providerOwned) p.push(`Secret ${s.metadata.name}: ${k} is a private key outside a provider`);
      }
      if (users.length === 0) p.push(`Secret ${s.metadata.name}: used by no workload`);
    }
    check('keys: each provider mounts only its own private key, the auditor public keys only, fronts/hubs/requester nothing', p);
  }

  // ---- the auditor's state ----
  {
    const p = [];
    const w = wOf.get(topo.auditor.id);
    if (w) {
      const c = w.spec.containers[0];
      if (argValue(c.args, '--audit-log') !== AUDIT_LOG) p.push(`args lack --audit-log ${AUDIT_LOG}`);
      const vct = (w.obj.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name);
      const m = (c.volumeMounts ?? []).find((x) => x.mountPath === AUDIT_DIR);
      if (!m) p.push(`nothing mounted at ${AUDIT_DIR}`);
      else if (!vct.includes(m.name)) p.push(`${AUDIT_DIR} is volume ${m.name}, not a volumeClaimTemplate`);
      if (m?.readOnly) p.push(`${AUDIT_DIR} is read-only`);
      if (w.obj.spec.replicas !== 1) p.push(`replicas ${w.obj.spec.replicas}; one auditor owns one log`);
    }
    check('the auditor persists its audit log on a volumeClaimTemplate', p);
  }

  // ---- disruption budgets ----
  {
    const p = [];
    for (const w of r.workloads) {
      if (w.kind === 'Job' || w.kind === 'CronJob') continue;
      const covering = r.pdbs.filter((b) => matchSelector(b.spec.selector, w.labels));
      if (covering.length !== 1) p.push(`${w.name}: covered by ${covering.length} PodDisruptionBudgets (want 1)`);
    }
    const provW = topo.providers.map((x) => wOf.get(x.id)).filter(Boolean);
    const provPdbs = r.pdbs.filter((b) => provW.some((w) => matchSelector(b.spec.selector, w.labels)));
    for (const b of provPdbs) {
      const covered = provW.filter((w) => matchSelector(b.spec.selector, w.labels)).length;
      const allow = topo.providers.length - topo.quorum;
      if (covered !== provW.length) p.push(`PDB ${b.metadata.name} covers ${covered} of ${provW.length} providers; one budget must span them all to protect the quorum`);
      if (b.spec.maxUnavailable === undefined || b.spec.maxUnavailable > allow) p.push(`PDB ${b.metadata.name}: maxUnavailable ${b.spec.maxUnavailable}, the quorum allows ${allow}`);
    }
    check('PodDisruptionBudgets cover every workload once; providers keep their quorum', p);
  }

  // ---- labels ----
  {
    const p = [];
    for (const o of r.objects) {
      const l = o.metadata?.labels ?? {};
      for (const k of REQUIRED_LABELS) {
        if (o.kind === 'Namespace' && k === 'app.kubernetes.io/managed-by') continue;
        if (!l[k]) p.push(`${o.kind} ${o.metadata?.name}: no ${k}`);
      }
    }
    for (const w of r.workloads) for (const k of REQUIRED_LABELS) if (!w.labels[k]) p.push(`${w.name} pod template: no ${k}`);
    check('app.kubernetes.io/* labels on every object and pod template', p);
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: policy.mjs RENDERED.yaml...');
  process.exit(2);
}
const rep = reporter();
for (const f of files) checkOverlay(f, rep);
rep.done();
