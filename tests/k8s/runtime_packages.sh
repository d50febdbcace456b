#!/usr/bin/env bash
# runtime_packages.sh BIN_DIR [LIST]: the image's runtime package list matches what the
# binaries link. For every BIN_DIR/qmesh* it resolves each shared library with ldd, finds
# the Debian package that ships it (dpkg -S), and checks:
#   - every such package is in LIST (default deploy/runtime-packages.txt), except libc6 and
#     libgcc-s1 (in every Debian base image) and sanitizer runtimes (never in an image);
#   - every package in LIST is linked by some binary (the list holds nothing stale).
# Prints one line per check and "RESULT <passed> <failed>".
set -uo pipefail
bin="${1:?usage: runtime_packages.sh BIN_DIR [LIST]}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="${2:-$here/../../deploy/runtime-packages.txt}"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
done_() { echo "RESULT $passed $failed"; [ "$failed" = 0 ]; exit $?; }

exempt='^(libc6|libgcc-s1|libasan[0-9]*|libubsan[0-9]*|liblsan[0-9]*|libtsan[0-9]*|libhwasan[0-9]*|libclang-rt-[0-9]+-dev|libclang-common-[0-9]+-dev)$'

for tool in ldd dpkg; do
  command -v "$tool" >/dev/null || { bad "$tool is not installed"; done_; }
done
[ -r "$list" ] || { bad "no package list $list"; done_; }
listed="$(grep -Ev '^[[:space:]]*(#|$)' "$list" | sed 's/[[:space:]].*//' | sort -u)"

# Every library of every binary, then ONE dpkg -S over all of them (dpkg -S is slow per
# call). Each library is looked up as ldd gave it, resolved, and across the merged-/usr
# aliases (/lib <-> /usr/lib).
shopt -s nullglob
bins=()
for b in "$bin"/qmesh*; do [ -f "$b" ] && [ -x "$b" ] && bins+=("$b"); done
[ ${#bins[@]} -gt 0 ] || { bad "no qmesh* binaries in $bin"; done_; }
declare -A libs_of
for b in "${bins[@]}"; do
  name="$(basename "$b")"
  out="$(ldd "$b" 2>&1)"; rc=$?
  if grep -q 'not a dynamic executable' <<<"$out"; then libs_of[$name]=""; continue; fi
  if [ "$rc" != 0 ]; then bad "$name: ldd failed: $out"; continue; fi
  if grep -q 'not found' <<<"$out"; then bad "$name: unresolved libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"; continue; fi
  libs_of[$name]="$(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out")"
done
candidates() {
  local f="$1" r
  r="$(readlink -f "$f")"
  printf '%s\n' "$f" "$r" "${f#/usr}" "/usr$f" "${r#/usr}" "/usr$r" | awk 'NF && !seen[$0]++'
}
mapfile -t all_candidates < <(for name in "${!libs_of[@]}"; do printf '%s\n' "${libs_of[$name]}"; done \
  | sort -u | while read -r lib; do [ -n "$lib" ] && candidates "$lib"; done | sort -u)
declare -A pkg_of
if [ ${#all_candidates[@]} -gt 0 ]; then
  while IFS= read -r line; do
    path="${line#*: }" pkg="${line%%: *}"
    case "$pkg" in *,*|diversion*) continue ;; esac
    pkg_of[$path]="${pkg%%:*}"
  done < <(dpkg -S "${all_candidates[@]}" 2>/dev/null)
fi
owner() {
  local c
  while read -r c; do
    if [ -n "${pkg_of[$c]:-}" ]; then echo "${pkg_of[$c]}"; return 0; fi
  done < <(candidates "$1")
  return 1
}

used=""
for name in $(printf '%s\n' "${!libs_of[@]}" | sort); do
  pkgs="" unowned=""
  while read -r lib; do
    [ -n "$lib" ] || continue
    if p="$(owner "$lib")"; then pkgs+="$p"$'\n'; else unowned+=" $lib"; fi
  done <<<"${libs_of[$name]}"
  pkgs="$(sort -u <<<"$pkgs" | sed '/^$/d')"
  used+="$pkgs"$'\n'
  missing="$(comm -23 <(grep -Ev "$exempt" <<<"$pkgs" || true) <(echo "$listed"))"
  if [ -n "$unowned" ]; then
    bad "$name: libraries no Debian package ships:$unowned"
  elif [ -n "$missing" ]; then
    bad "$name: links packages missing from $(basename "$list"): $(echo $missing)"
  else
    ok "$name: every linked package is in $(basename "$list") ($(grep -Ev "$exempt" <<<"$pkgs" | tr '\n' ' ')+ exempt: $(grep -E "$exempt" <<<"$pkgs" | tr '\n' ' '))"
  fi
done
stale="$(comm -23 <(echo "$listed") <(sort -u <<<"$used" | sed '/^$/d'))"
if [ -n "$stale" ]; then
  bad "$(basename "$list") names packages no binary links: $(echo $stale)"
else
  ok "$(basename "$list"): every listed package is linked by some binary"
fi
done_
