#!/usr/bin/env bash
# tests/k8s/run.sh BIN_DIR: the Kubernetes deployment's tests, the single entry point CI
# calls with the build's bin directory (the one holding qmesh and qmesh-*).
#
#   1. npm ci (pinned validator packages, from package-lock.json)
#   2. throwaway keys (deploy/k8s/make-dev-keys.sh) in a scratch copy of deploy/k8s
#   3. render every overlay with `kubectl kustomize`
#   4. strict schema validation of every rendered object (validate.mjs)
#   5. negative fixtures: each must be rejected for its stated reason
#   6. manifest policy (policy.mjs): instances, keys, probes, security, PDBs, labels
#   7. the topology in each rendered ConfigMap passes `BIN_DIR/qmesh validate`, and a
#      broken copy of it does not
#   8. NetworkPolicy edges == the flow (netpol_edges.mjs), and mutated policies are caught
#   9. deploy/runtime-packages.txt == the packages BIN_DIR/qmesh* link (ldd + dpkg -S)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
# KEEP_RENDERED=DIR keeps the rendered overlays in DIR.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
k8s="$root/deploy/k8s"
bin="${1:-}"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
section() { echo; echo "== $*"; }
finish() {
  echo
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
# counted CMD...: runs a checker that prints "RESULT <passed> <failed>" last, adds its counts.
counted() {
  local out rc line p f
  out="$("$@" 2>&1)"
  rc=$?
  printf '%s\n' "$out" | grep -v '^RESULT '
  line="$(printf '%s\n' "$out" | grep '^RESULT ' | tail -1)"
  if [ -n "$line" ]; then
    read -r _ p f <<<"$line"
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then bad "$* exited $rc"; fi
  elif [ "$rc" = 0 ]; then
    bad "$*: printed no RESULT line"
  else
    bad "$*: exited $rc"
  fi
}

if [ -z "$bin" ]; then
  echo "usage: tests/k8s/run.sh BIN_DIR   (the build's bin directory, e.g. build/bin)" >&2
  exit 2
fi
bin="$(cd "$bin" 2>/dev/null && pwd)" || { echo "tests/k8s/run.sh: no such directory: $1" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/qmesh-k8s.XXXXXX")"
trap 'rm -rf "$work"' EXIT

section "tools"
missing_tool=0
for tool in kubectl node npm openssl ldd dpkg; do
  if command -v "$tool" >/dev/null; then ok "$tool: $(command -v "$tool")"; else bad "$tool is not installed"; missing_tool=1; fi
done
[ "$missing_tool" = 0 ] || finish

section "npm ci (tests/k8s)"
if (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1; then
  ok "npm ci: $(cd "$here" && node -e "const l=require('./package-lock.json').packages; console.log(['@kubernetes/client-node','kubernetes-models','yaml'].map(n=>n+'@'+l['node_modules/'+n].version).join(' '))")"
else
  cat "$work/npm.log"
  bad "npm ci failed"
  finish
fi

section "render every overlay (kubectl kustomize)"
# A scratch copy, so the throwaway keys never land in the work tree.
cp -R "$k8s" "$work/k8s"
rm -rf "$work/k8s/overlays/"*/keys
if "$work/k8s/make-dev-keys.sh" --out "$work/k8s/overlays/dev/keys" >"$work/keys.log" 2>&1; then
  ok "throwaway provider keys: $(grep -c created "$work/keys.log") created"
else
  cat "$work/keys.log"
  bad "make-dev-keys.sh failed"
fi
mkdir -p "$work/rendered"
rendered=()
for dir in "$work/k8s/overlays/"*/; do
  name="$(basename "$dir")"
  out="$work/rendered/$name.yaml"
  if kubectl kustomize "$dir" >"$out" 2>"$work/kustomize-$name.log"; then
    ok "overlays/$name renders ($(grep -c '^kind:' "$out") objects)"
    rendered+=("$out")
  else
    cat "$work/kustomize-$name.log"
    bad "overlays/$name does not render"
  fi
done
if [ ${#rendered[@]} -eq 0 ]; then bad "no overlay rendered"; finish; fi
if [ -n "${KEEP_RENDERED:-}" ]; then mkdir -p "$KEEP_RENDERED" && cp "${rendered[@]}" "$KEEP_RENDERED/"; fi

section "strict schema validation of every rendered object"
counted node "$here/validate.mjs" "${rendered[@]}"

section "negative fixtures (each must be rejected for its stated reason)"
counted node "$here/validate.mjs" --fixtures "$here/fixtures"

section "manifest policy"
counted node "$here/policy.mjs" "${rendered[@]}"

section "the topology in each rendered ConfigMap passes qmesh validate"
if [ ! -x "$bin/qmesh" ]; then
  bad "$bin/qmesh is missing: build the qmesh target first (cmake --build BUILD --target qmesh); cannot run 'qmesh validate'"
else
  for r in "${rendered[@]}"; do
    name="$(basename "$r" .yaml)"
    topo="$work/topology-$name.yaml"
    if ! node "$here/extract_topology.mjs" "$r" "$topo" >"$work/extract.log" 2>&1; then
      cat "$work/extract.log"
      bad "overlays/$name: no topology to extract"
      continue
    fi
    if out="$("$bin/qmesh" validate "$topo" 2>&1)"; then
      ok "overlays/$name: qmesh validate accepts the ConfigMap's topology${out:+ ($(echo "$out" | tr '\n' ' ' | cut -c1-160))}"
    else
      bad "overlays/$name: qmesh validate rejects the ConfigMap's topology: $out"
    fi
    # A control: the same file with a misspelled key must be rejected, so an accepting
    # validator is known to be looking.
    sed 's/^\(\s*\)auditor:/\1auditer:/' "$topo" >"$work/broken-$name.yaml"
    if cmp -s "$topo" "$work/broken-$name.yaml"; then
      bad "overlays/$name: could not derive a broken topology (no auditor: key)"
    elif out="$("$bin/qmesh" validate "$work/broken-$name.yaml" 2>&1)"; then
      bad "overlays/$name: qmesh validate accepted a topology with an unknown key 'auditer' (is validate implemented?)"
    else
      ok "overlays/$name: qmesh validate rejects the same topology with a misspelled key ($(echo "$out" | head -1 | sed "s|$work/||" | cut -c1-160))"
    fi
  done
fi

section "NetworkPolicies allow exactly the flow"
counted node "$here/netpol_edges.mjs" "${rendered[@]}"
counted node "$here/netpol_edges.mjs" --self-test "${rendered[0]}"

section "runtime packages (deploy/runtime-packages.txt vs ldd of $bin/qmesh*)"
counted "$here/runtime_packages.sh" "$bin" "$root/deploy/runtime-packages.txt"
# The Dockerfile's runtime stage must install that very list.
if grep -q 'COPY deploy/runtime-packages.txt' "$root/Dockerfile" && grep -q 'xargs apt-get install' "$root/Dockerfile"; then
  ok "Dockerfile installs deploy/runtime-packages.txt in its runtime stage"
else
  bad "Dockerfile does not install deploy/runtime-packages.txt"
fi
if grep -Eq '^USER 65532' "$root/Dockerfile" && grep -Eq '^FROM debian:\$\{DEBIAN_RELEASE\}-slim|^FROM debian:bookworm' "$root/Dockerfile" && grep -q 'DEBIAN_RELEASE=bookworm' "$root/Dockerfile"; then
  ok "Dockerfile: Debian 12 (bookworm), runs as uid 65532"
else
  bad "Dockerfile: expected Debian 12 (bookworm) stages and USER 65532"
fi

finish
