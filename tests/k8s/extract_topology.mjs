#!/usr/bin/env node
// extract_topology.mjs RENDERED.yaml OUT.yaml: writes the topology.yaml of the one topology
// ConfigMap in a rendered overlay to OUT.yaml, byte for byte as the pods will read it.
import { writeFileSync } from 'node:fs';
import { loadRendered, topologyConfigMaps, TOPOLOGY_KEY } from './lib/rendered.mjs';

const [file, out] = process.argv.slice(2);
if (!file || !out) {
  console.error('usage: extract_topology.mjs RENDERED.yaml OUT.yaml');
  process.exit(2);
}
const cms = topologyConfigMaps(loadRendered(file));
if (cms.length !== 1) {
  console.error(`${file}: ${cms.length} ConfigMaps carry ${TOPOLOGY_KEY}, expected 1`);
  process.exit(1);
}
writeFileSync(out, cms[0].data[TOPOLOGY_KEY]);
console.log(`${file}: ConfigMap ${cms[0].metadata.name} -> ${out}`);
