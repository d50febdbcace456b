#!/usr/bin/env node
// validate.mjs: strict offline schema validation of rendered Kubernetes manifests.
//
//   node validate.mjs FILE...            every object of every (multi-document) FILE must be
//                                        valid; one check per object
//   node validate.mjs --fixtures DIR     every DIR/*.yaml must be REJECTED with exactly the
//                                        errors its "# expect: CODE PATH" lines name
//
// Unknown fields at any depth, wrong types, missing required fields and unknown
// apiVersion/kind pairs are errors (see lib/schema.mjs). Prints one line per check and a
// last line "RESULT <passed> <failed>"; exits 1 when anything failed.
import { readFileSync, readdirSync } from 'node:fs';
import { join, basename } from 'node:path';
import { parseDocuments, validateObject, objectName } from './lib/schema.mjs';

let passed = 0;
let failed = 0;
const ok = (msg) => { passed++; console.log(`ok   ${msg}`); };
const bad = (msg) => { failed++; console.log(`FAIL ${msg}`); };
const fmt = (e) => `[${e.code}] ${e.path}: ${e.message}`;

async function validateText(text, name) {
  let docs;
  try {
    docs = parseDocuments(text, name);
  } catch (e) {
    return { parseError: e, results: [] };
  }
  const results = [];
  for (const { index, object } of docs) {
    results.push({ index, object, errors: await validateObject(object) });
  }
  return { results };
}

async function checkFiles(files) {
  for (const file of files) {
    const { parseError, results } = await validateText(readFileSync(file, 'utf8'), file);
    if (parseError) {
      bad(`${file}: [yaml] ${parseError.message}`);
      continue;
    }
    if (results.length === 0) bad(`${file}: no objects`);
    for (const r of results) {
      const what = `${basename(file)} #${r.index} ${objectName(r.object)}`;
      if (r.errors.length === 0) ok(what);
      else bad(`${what}\n       ${r.errors.map(fmt).join('\n       ')}`);
    }
  }
}

async function checkFixtures(dir) {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) bad(`${dir}: no fixtures`);
  for (const f of files) {
    const file = join(dir, f);
    const text = readFileSync(file, 'utf8');
    const expects = [...text.matchAll(/^# expect: (\S+)(?: (\S+))?\s*$/gm)].map((m) => ({ code: m[1], path: m[2] }));
    if (expects.length === 0) {
      bad(`${f}: no "# expect: CODE PATH" line`);
      continue;
    }
    const { parseError, results } = await validateText(text, f);
    const errors = parseError ? [{ code: 'yaml', path: '.', message: parseError.message }] : results.flatMap((r) => r.errors);
    if (errors.length === 0) {
      bad(`${f}: was accepted, expected rejection with ${expects.map((x) => x.code).join(', ')}`);
      continue;
    }
    const matches = (e, x) => e.code === x.code && (!x.path || e.path === x.path);
    const missing = expects.filter((x) => !errors.some((e) => matches(e, x)));
    const unexpected = errors.filter((e) => !expects.some((x) => matches(e, x)));
    if (missing.length) {
      bad(`${f}: rejected, but not for ${missing.map((x) => `${x.code} ${x.path ?? ''}`.trim()).join(', ')}; got\n       ${errors.map(fmt).join('\n       ')}`);
    } else if (unexpected.length) {
      bad(`${f}: rejected for more than it should be:\n       ${unexpected.map(fmt).join('\n       ')}`);
    } else {
      ok(`${f}: rejected: ${errors.map(fmt).join('; ')}`);
    }
  }
}

const args = process.argv.slice(2);
if (args.length === 0 || args[0] === '-h' || args[0] === '--help') {
  console.error('usage: validate.mjs FILE... | validate.mjs --fixtures DIR');
  process.exit(2);
}
if (args[0] === '--fixtures') {
  if (args.length !== 2) {
    console.error('usage: validate.mjs --fixtures DIR');
    process.exit(2);
  }
  await checkFixtures(args[1]);
} else {
  await checkFiles(args);
}
console.log(`RESULT ${passed} ${failed}`);
process.exit(failed ? 1 : 0);
