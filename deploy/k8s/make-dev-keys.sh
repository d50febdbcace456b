#!/usr/bin/env bash
# make-dev-keys.sh: throwaway provider keys for overlays/dev (and for rendering in CI).
#
#   deploy/k8s/make-dev-keys.sh [--force] [--out DIR] [PROVIDER_ID ...]
#
# For each provider id (default: PROVIDER_A PROVIDER_B PROVIDER_C, as in base/topology.yaml)
# writes into DIR (default: deploy/k8s/overlays/dev/keys, which git ignores):
#   <ID>.key           Ed25519 private key, PKCS#8 PEM   -> Secret qmesh-provider-<x> only
#   <ID>.pub           its public key, SPKI PEM          -> Secret qmesh-auditor-pubkeys
#   <ID>.score_secret  32 random bytes as 64 hex chars   -> Secret qmesh-provider-<x> only
# overlays/dev's secretGenerator reads these files. Existing keys are kept unless --force.
# These keys are for development only: for production see docs/KUBERNETES.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/overlays/dev/keys"
force=0
ids=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "make-dev-keys.sh: unknown option $1" >&2; exit 2 ;;
    *) ids+=("$1") ;;
  esac
  shift
done
[ ${#ids[@]} -gt 0 ] || ids=(PROVIDER_A PROVIDER_B PROVIDER_C)
command -v openssl >/dev/null || { echo "make-dev-keys.sh: openssl is required" >&2; exit 1; }

umask 077
mkdir -p "$out"
for id in "${ids[@]}"; do
  case "$id" in
    *[!A-Za-z0-9_.-]*|'') echo "make-dev-keys.sh: bad provider id '$id'" >&2; exit 2 ;;
  esac
  key="$out/$id.key" pub="$out/$id.pub" sec="$out/$id.score_secret"
  if [ "$force" = 0 ] && [ -s "$key" ] && [ -s "$pub" ] && [ -s "$sec" ]; then
    echo "kept    $id ($out)"
    continue
  fi
  openssl genpkey -algorithm ed25519 -out "$key.tmp"
  openssl pkey -in "$key.tmp" -pubout -out "$pub.tmp"
  printf '%s' "$(openssl rand -hex 32)" > "$sec.tmp"
  mv -f "$key.tmp" "$key"; mv -f "$pub.tmp" "$pub"; mv -f "$sec.tmp" "$sec"
  echo "created $id ($out)"
done
