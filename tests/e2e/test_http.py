"""test_http: the roles' plain-HTTP side (libmicrohttpd) through the real binaries.
1 the front's ingress, driven with curl: POST / with X-Verification-Context, X-Domain and
  X-Request-Seq answers a constant empty 204, and the request is decided at the auditor
  (Auditor/Lookup of the body's SHA-256); refusals map to 400, 404, 405 and 413;
2 after a requester batch, GET /metrics on every role parses as the Prometheus text format
  (a strict reader written here, and prometheus_client's own parser), every family has HELP
  and TYPE, and every number equals the role's own Stats, the auditor's Summary and
  `qmesh summary --json`; every role shows its gauges and its latency histogram, whose
  _count is the number of requests it handled (front: forwarded + hub_failed; provider:
  reported + rejected + failed votes; auditor: decided);
3 the roles stop cleanly (exit 0) with their HTTP servers running;
4 GET /healthz on every role is the role's own Health/Check: 200 SERVING, also under mutual
  TLS (where a probe without a client certificate cannot ask the gRPC port), and 503
  NOT_SERVING while a role drains after SIGTERM."""
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

import grpc  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
pb = meshlib.pb()
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None
TOTAL = 60

# ---- a strict reader of the text exposition format 0.0.4 ----
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(Exception):
    pass


def _unescape(s, quote, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                raise FormatError("%s: dangling backslash" % where)
            n = s[i + 1]
            if n == "n":
                out.append("\n")
            elif n == "\\":
                out.append("\\")
            elif n == '"' and quote:
                out.append('"')
            else:
                raise FormatError("%s: bad escape \\%s" % (where, n))
            i += 2
        elif c == "\n" or (quote and c == '"'):
            raise FormatError("%s: unescaped %r" % (where, c))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _value(s, where):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise FormatError("%s: bad value %r" % (where, s))
    return float(s)


def _labels(s, where):
    """'a="x",b="y"' (a trailing comma allowed) -> dict; duplicates refused."""
    labels, i = {}, 0
    while i < len(s):
        m = re.match(r"(%s)=\"" % LABEL, s[i:])
        if not m:
            raise FormatError("%s: bad label at %r" % (where, s[i:]))
        key = m.group(1)
        j = i + m.end()
        k = j
        while k < len(s) and s[k] != '"':
            k += 2 if s[k] == "\\" else 1
        if k >= len(s):
            raise FormatError("%s: unterminated label value" % where)
        if key in labels:
            raise FormatError("%s: label %s twice" % (where, key))
        labels[key] = _unescape(s[j:k], True, where)
        i = k + 1
        if i < len(s):
            if s[i] != ",":
                raise FormatError("%s: expected ',' after label %s" % (where, key))
            i += 1
    return labels


def _check_histograms(families, buckets, sums, counts):
    """Every histogram series: buckets in ascending le order ending with +Inf, their counts
    cumulative (never decreasing), +Inf equal to _count, and a _sum."""
    for (fam, series), bs in buckets.items():
        where = "histogram %s%s" % (fam, dict(series))
        les = [le for le, _ in bs]
        if not les or les[-1] != math.inf:
            raise FormatError("%s: no le=\"+Inf\" bucket last" % where)
        if any(b <= a for a, b in zip(les, les[1:])):
            raise FormatError("%s: le not ascending %r" % (where, les))
        vals = [v for _, v in bs]
        if any(b < a for a, b in zip(vals, vals[1:])) or vals[0] < 0:
            raise FormatError("%s: bucket counts decrease %r" % (where, vals))
        if (fam, series) not in counts or counts[(fam, series)] != vals[-1]:
            raise FormatError("%s: +Inf %r != _count %r" % (where, vals[-1], counts.get((fam, series))))
        if (fam, series) not in sums:
            raise FormatError("%s: no _sum" % where)
    for key in set(counts) | set(sums):
        if key not in buckets:
            raise FormatError("histogram %s: _sum/_count without buckets" % key[0])
    for name, fam in families.items():
        if fam.get("type") == "histogram" and not any(k[0] == name for k in buckets):
            raise FormatError("histogram %s: no samples" % name)


def parse_strict(text):
    """The page as {"families": {name: {"type", "help"}}, "samples": {(name, labels): value}}.
    Strict: a final newline, no blank or stray comment lines, at most one HELP and one TYPE
    per family before its samples, every sample under a TYPE of its family, the samples of
    a family together, no sample twice, counters finite and not negative, histograms
    well-formed (see _check_histograms)."""
    if not text.endswith("\n"):
        raise FormatError("no final newline")
    families, samples, closed = {}, {}, set()
    hbuckets, hsums, hcounts = {}, {}, {}
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            m = re.fullmatch(r"# (HELP|TYPE) (%s)(?: (.*))?" % NAME, line)
            if not m:
                raise FormatError("%s: bad %r" % (where, line))
            kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
            fam = families.setdefault(name, {})
            if name != current:
                if name in closed:
                    raise FormatError("%s: family %s resumed after other families" % (where, name))
                if current:
                    closed.add(current)
                current = name
            if kind in fam:
                raise FormatError("%s: second %s for %s" % (where, kind, name))
            if kind == "HELP":
                fam["help"] = _unescape(rest, False, where)
            else:
                if rest not in TYPES:
                    raise FormatError("%s: unknown type %r" % (where, rest))
                if fam.get("samples"):
                    raise FormatError("%s: TYPE of %s after its samples" % (where, name))
                fam["type"] = rest
            continue
        if not line or line.startswith("#"):
            raise FormatError("%s: blank or stray comment line %r" % (where, line))
        m = re.fullmatch(r"(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?" % NAME, line)
        if not m:
            raise FormatError("%s: not a sample: %r" % (where, line))
        name, labels, value = m.group(1), _labels(m.group(2) or "", where), _value(m.group(3), where)
        fam = families.get(current)
        if not fam or "type" not in fam:
            raise FormatError("%s: sample %s with no TYPE line before it" % (where, name))
        allowed = {current}
        if fam["type"] == "histogram":
            allowed = {current + "_bucket", current + "_sum", current + "_count"}
        elif fam["type"] == "summary":
            allowed |= {current + "_sum", current + "_count"}
        if name not in allowed:
            raise FormatError("%s: sample %s outside its family (current %s)" % (where, name, current))
        if fam["type"] == "counter" and (math.isnan(value) or value < 0 or math.isinf(value)):
            raise FormatError("%s: counter %s = %r" % (where, name, value))
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise FormatError("%s: sample %r twice" % (where, key))
        samples[key] = value
        fam["samples"] = fam.get("samples", 0) + 1
        if fam["type"] == "histogram":
            series = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            if name == current + "_bucket":
                if "le" not in labels:
                    raise FormatError("%s: bucket without le" % where)
                hbuckets.setdefault((current, series), []).append((_value(labels["le"], where), value))
            elif "le" in labels:
                raise FormatError("%s: le on %s" % (where, name))
            else:
                (hsums if name == current + "_sum" else hcounts)[(current, series)] = value
    _check_histograms(families, hbuckets, hsums, hcounts)
    return {"families": families, "samples": samples}


def strict_ok(text):
    try:
        parse_strict(text)
        return True
    except FormatError:
        return False


# The reader itself must refuse what the format refuses.
GOOD = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v\\"q"} 1\n'
R.check(strict_ok(GOOD), "the strict reader takes a valid page")
for bad, what in [(GOOD[:-1], "no final newline"),
                  (GOOD + "a_total{k=\"w\"} 2\n# TYPE b gauge\nb 1\na_total{k=\"z\"} 3\n", "a resumed family"),
                  ("a 1\n", "a sample with no TYPE"),
                  (GOOD + '# TYPE a_total counter\n', "a second TYPE"),
                  (GOOD.replace("} 1", "} one"), "a value that is not a number"),
                  (GOOD.replace('\\"q', '\\q'), "a bad escape"),
                  (GOOD + 'a_total{k="v\\"q"} 1\n', "a sample twice"),
                  (GOOD.replace("} 1", "} -1"), "a negative counter"),
                  (GOOD + "\n", "a blank line")]:
    R.check(not strict_ok(bad), "the strict reader refuses " + what)
HIST = ('# HELP h x\n# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3\n'
        'h_sum 1.5\nh_count 3\n')
R.check(strict_ok(HIST), "the strict reader takes a histogram")
for bad, what in [(HIST.replace('"1"} 2', '"1"} 0'), "decreasing buckets"),
                  (HIST.replace("h_count 3", "h_count 4"), "+Inf != _count"),
                  (HIST.replace('h_bucket{le="+Inf"} 3\n', ""), "no +Inf bucket"),
                  (HIST.replace('le="1"', 'le="0.25"'), "le not ascending"),
                  (HIST.replace("h_sum 1.5\n", ""), "no _sum"),
                  (HIST + "h 1\n", "a bare histogram sample"),
                  (GOOD.replace("a_total{", "a_total_bucket{"), "a bucket in a counter family")]:
    R.check(not strict_ok(bad), "the strict reader refuses a histogram with " + what)


# ---- helpers ----
def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def curl(url, *args):
    """curl -sS: (status, headers text, body bytes)."""
    with tempfile.NamedTemporaryFile() as hdr, tempfile.NamedTemporaryFile() as body:
        p = subprocess.run(["curl", "-sS", "-o", body.name, "-D", hdr.name, "-w", "%{http_code}",
                            "--max-time", "30"] + list(args) + [url], capture_output=True, text=True)
        return int(p.stdout or 0), open(hdr.name).read(), open(body.name, "rb").read()


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if http_get(url, timeout=2)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def stats(addr, service):
    return meshlib.unary(addr, "/qmesh.v1.%s/Stats" % service, pb.StatsRequest(), pb.RoleStats)


def summary(addr):
    return meshlib.unary(addr, "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary)


def lookup(addr, repr_hex):
    return meshlib.unary(addr, "/qmesh.v1.Auditor/Lookup", pb.LookupRequest(request_repr_hex=repr_hex), pb.LookupReply)


# ---- the mesh: every role with its own metrics port, the fronts with an ingress ----
keys = tempfile.mkdtemp(prefix="qmesh-keys-")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", keys], check=True, capture_output=True)
text, ports = meshlib.topology_yaml(extra="keys_dir: %s\n" % keys)
topo = meshlib.write_topology(text)
ROLES = [("AUDITOR", "auditor"), ("PROVIDER_A", "provider"), ("PROVIDER_B", "provider"), ("PROVIDER_C", "provider"),
         ("HUB_A", "hub"), ("HUB_B", "hub"), ("NUVL_A", "front"), ("NUVL_B", "front")]
SERVICE = meshlib.SERVICE
extra = meshlib.free_ports(len(ROLES) + 2)
while set(extra) & set(ports.values()):
    extra = meshlib.free_ports(len(ROLES) + 2)
metrics_port = {rid: extra[i] for i, (rid, _) in enumerate(ROLES)}
ingress_port = {"NUVL_A": extra[-2], "NUVL_B": extra[-1]}
env = meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C", TOTAL_REQUESTS=TOTAL)
logs = tempfile.mkdtemp(prefix="qmesh-http-logs-")
procs = {}
for rid, role in ROLES:
    args = meshlib.role_args(BIN, topo, rid, extra=["--metrics-addr", "127.0.0.1:%d" % metrics_port[rid]])
    if role == "front":
        args += ["--ingress-addr", "127.0.0.1:%d" % ingress_port[rid]]
    procs[rid] = meshlib.spawn(args, env=env, stderr=open(os.path.join(logs, rid + ".log"), "w"))
for rid, _ in ROLES:
    meshlib.wait_serving("127.0.0.1:%d" % ports[rid])
for rid, _ in ROLES:
    R.check(wait_http("http://127.0.0.1:%d/metrics" % metrics_port[rid]), "%s serves /metrics" % rid)
AUD = "127.0.0.1:%d" % ports["AUDITOR"]
INGRESS = "http://127.0.0.1:%d/" % ingress_port["NUVL_A"]

# ---- 0: /healthz, the role's own Health/Check over plain HTTP ----
for rid, _ in ROLES:
    code, headers, page = http_get("http://127.0.0.1:%d/healthz" % metrics_port[rid])
    R.eq((code, page), (200, "SERVING\n"), "%s GET /healthz: 200 SERVING" % rid)
    code, _, page = curl("http://127.0.0.1:%d/healthz" % metrics_port[rid], "-I")
    R.eq(code, 200, "%s HEAD /healthz: 200" % rid)
code, _, _ = curl("http://127.0.0.1:%d/healthz" % metrics_port["HUB_A"], "--data-binary", "x")
R.eq(code, 405, "POST /healthz is 405")

# ---- 1: the ingress, with curl ----
body = b'{"curl":1,"from":"test_http"}'
code, headers, reply = curl(INGRESS, "-X", "POST", "--data-binary", body.decode(),
                            "-H", "X-Verification-Context: CTX_ALPHA", "-H", "X-Domain: identity",
                            "-H", "X-Request-Seq: 100000")
R.eq(code, 204, "curl POST / answers 204")
R.eq(reply, b"", "the 204 has no body")
R.check(not re.search(r"(?im)^content-length: *[1-9]", headers), "no content length on the 204 (%r)" % headers)
repr_hex = hashlib.sha256(body).hexdigest()
deadline, lk = time.time() + 15, None
while time.time() < deadline:
    lk = lookup(AUD, repr_hex)
    if lk.state in ("decided", "incomplete"):
        break
    time.sleep(0.05)
R.eq(lk.state if lk else None, "decided", "the curl request is decided at the auditor")
R.eq((lk.sequence, lk.domain, len(lk.votes)), (100000, "identity", 3),
     "the auditor saw the request's X-Request-Seq, X-Domain and 3 votes")
R.check(all(v.verified for v in lk.votes), "every vote on the curl request verified")
# a second identical post: the same constant answer
code2, _, reply2 = curl(INGRESS, "--data-binary", "second", "-H", "X-Domain: storage")
R.eq((code2, reply2), (204, b""), "a second post gets the same constant reply")

# refusals
code, _, reply = curl(INGRESS, "--data-binary", "x", "-H", "X-Request-Seq: abc")
R.eq(code, 400, "a non-numeric X-Request-Seq is 400")
R.check(b"x-request-seq" in reply, "the 400 names the reason (%r)" % reply)
big = tempfile.NamedTemporaryFile(delete=False)
big.write(b"z" * (64 * 1024 + 1))
big.close()
code, _, reply = curl(INGRESS, "--data-binary", "@" + big.name)
R.eq(code, 413, "a body over 64 KiB is 413")
code, _, _ = curl(INGRESS, "--data-binary", "@" + big.name, "-H", "Expect:")
R.eq(code, 413, "a body over 64 KiB sent without Expect: 100-continue is 413")
code, _, _ = curl(INGRESS, "--data-binary", "@" + big.name, "-H", "Transfer-Encoding: chunked")
R.eq(code, 413, "a chunked body over 64 KiB is 413")
os.unlink(big.name)
exact = b"e" * (64 * 1024)
with tempfile.NamedTemporaryFile() as f:
    f.write(exact)
    f.flush()
    code, _, _ = curl(INGRESS, "--data-binary", "@" + f.name)
R.eq(code, 204, "a body of exactly 64 KiB is taken")
code, headers, _ = curl(INGRESS)
R.eq(code, 405, "GET / is 405")
R.check(re.search(r"(?im)^allow: *POST", headers) is not None, "the 405 says Allow: POST")
code, _, _ = curl(INGRESS + "elsewhere", "--data-binary", "x")
R.eq(code, 404, "POST /elsewhere is 404")
code, _, _ = curl("http://127.0.0.1:%d/" % metrics_port["NUVL_A"])
R.eq(code, 404, "the metrics port serves /metrics and /healthz only")
INGRESS_OK = 3  # the two posts and the 64 KiB one

# ---- 2: a batch, then /metrics on every role against Stats, Summary and `qmesh summary` ----
rq = subprocess.run([os.path.join(BIN, "qmesh-requester"), "--topology", topo], env=env, capture_output=True,
                    text=True, timeout=300)
R.eq(rq.returncode, 0, "the requester ran (%s)" % rq.stderr.strip()[-300:])
want_decided = TOTAL + INGRESS_OK
deadline = time.time() + 30
while time.time() < deadline:
    s = summary(AUD)
    if s.decided >= want_decided and s.pending == 0:
        break
    time.sleep(0.05)
R.eq((s.decided, s.pending), (want_decided, 0), "every request decided")


def all_stats():
    return {rid: stats("127.0.0.1:%d" % ports[rid], SERVICE[role]) for rid, role in ROLES}


def counters(st):
    return {c.name: c.value for c in st.counters if c.name != "rpc_calls"}


# quiescent: the last replies (provider reports, hub relays) have landed everywhere
prev, deadline = None, time.time() + 15
while time.time() < deadline:
    cur = {rid: counters(st) for rid, st in all_stats().items()}
    if cur == prev:
        break
    prev = cur
    time.sleep(0.2)

pages, parsed = {}, {}
for rid, role in ROLES:
    code, headers, page = http_get("http://127.0.0.1:%d/metrics" % metrics_port[rid])
    R.eq(code, 200, "%s /metrics is 200" % rid)
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    R.check(ctype.startswith("text/plain; version=0.0.4"), "%s /metrics content type (%r)" % (rid, ctype))
    pages[rid] = page
    try:
        parsed[rid] = parse_strict(page)
        R.check(True, "%s /metrics parses strictly" % rid)
    except FormatError as e:
        R.check(False, "%s /metrics parses strictly: %s" % (rid, e))
        parsed[rid] = {"families": {}, "samples": {}}
    fams = parsed[rid]["families"]
    R.check(fams and all("help" in f and "type" in f for f in fams.values()),
            "%s: every family has HELP and TYPE" % rid)
    if text_string_to_metric_families is None:
        R.check(False, "prometheus_client's parser (Debian python3-prometheus-client) is installed")
        continue
    try:
        theirs = {}
        for fam in text_string_to_metric_families(page):
            for smp in fam.samples:
                theirs[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
        R.eq(theirs, parsed[rid]["samples"], "%s: prometheus_client reads the same samples" % rid)
    except Exception as e:  # noqa: BLE001 - any parser error is a failure
        R.check(False, "%s: prometheus_client parses /metrics: %r" % (rid, e))
after = all_stats()


def metric(rid, name, **labels):
    role = dict(ROLES)[rid]
    key = (name, tuple(sorted(dict(labels, role=role, id=rid).items())))
    return parsed[rid]["samples"].get(key)


# The auditor's families from its Summary; a Stats counter of the same name is left out.
SUMMARY_NAMES = {"quorum_successes", "quorum_failures", "decided", "incomplete", "pending", "votes_accepted",
                 "votes_rejected", "votes_duplicate", "votes_late", "unknown_domain_votes", "quorum_threshold",
                 "providers", "provider_votes", "provider_disagreements", "provider_initiations"}
for rid, role in ROLES:
    st = after[rid]
    R.eq(metric(rid, "qmesh_info", **({"region": st.region} if st.region else {})), 1.0, "%s qmesh_info" % rid)
    up = metric(rid, "qmesh_uptime_seconds")
    R.check(up is not None and 0 < up <= st.uptime_ms / 1000.0, "%s uptime %r <= %r s" % (rid, up, st.uptime_ms / 1000.0))
    shadowed = 0
    for name, value in counters(st).items():
        if role == "auditor" and name in SUMMARY_NAMES:
            shadowed += 1
            continue
        R.eq(metric(rid, "qmesh_%s_total" % re.sub(r"[^A-Za-z0-9_]", "_", name)), float(value),
             "%s qmesh_%s_total equals its Stats" % (rid, name))
    calls = {c.name: c.value for c in st.counters}["rpc_calls"]
    got = metric(rid, "qmesh_rpc_calls_total")
    R.check(got is not None and got < calls <= got + 3, "%s rpc_calls %r then %r" % (rid, got, calls))
    R.eq(metric(rid, "qmesh_metrics_skipped"), 0.0, "%s: no family left out" % rid)
    R.check(role != "auditor" or shadowed >= 3, "the auditor's Stats votes_* merged into the Summary's families")

s = summary(AUD)
for name in ("quorum_successes", "quorum_failures", "decided", "incomplete", "votes_accepted", "votes_rejected",
             "votes_duplicate", "votes_late", "unknown_domain_votes"):
    R.eq(metric("AUDITOR", "qmesh_%s_total" % name), float(getattr(s, name)), "auditor qmesh_%s_total = Summary" % name)
R.eq(metric("AUDITOR", "qmesh_pending"), float(s.pending), "auditor qmesh_pending = Summary")
R.eq(parsed["AUDITOR"]["families"].get("qmesh_pending", {}).get("type"), "gauge", "qmesh_pending is a gauge")
aud_counters = {c.name: c.value for c in after["AUDITOR"].counters}
for name in sorted(SUMMARY_NAMES & set(aud_counters)):
    R.eq(aud_counters[name], getattr(s, name), "the auditor's Stats %s agrees with its Summary" % name)
for p in s.by_provider:
    R.eq(metric("AUDITOR", "qmesh_provider_votes_total", provider=p.id), float(p.votes), "%s votes" % p.id)
    R.eq(metric("AUDITOR", "qmesh_provider_disagreements_total", provider=p.id), float(p.disagreements),
         "%s disagreements" % p.id)
    R.eq(metric("AUDITOR", "qmesh_provider_initiations_total", provider=p.id), float(p.initiations),
         "%s audited initiations" % p.id)

# gauges and histograms: every one in Stats is on the page, with its type; each histogram's
# _count is the number of requests the role handled, where a counter says it
GAUGES = {"front": {"requests_outstanding", "batch_waiting", "hub_calls_inflight", "hub_calls_queued"},
          "hub": {"provider_calls_inflight", "provider_calls_queued"},
          "provider": {"votes_waiting", "auditor_batches_inflight"},
          "auditor": {"requests_pending", "drift_reorder_waiting"}}
HISTOGRAMS = {"front": "submit_latency_seconds", "hub": "relay_latency_seconds", "provider": "vote_latency_seconds",
              "auditor": "decision_latency_seconds"}
hist_count = {}
for rid, role in ROLES:
    st, fams = after[rid], parsed[rid]["families"]
    R.check(GAUGES[role] <= {g.name for g in st.gauges}, "%s Stats has the gauges %s" % (rid, sorted(GAUGES[role])))
    for g in st.gauges:
        name = "qmesh_" + re.sub(r"[^A-Za-z0-9_]", "_", g.name)
        R.eq(fams.get(name, {}).get("type"), "gauge", "%s %s is a gauge" % (rid, name))
        v = metric(rid, name)
        R.check(v is not None and v == int(v), "%s %s = %r, a whole number" % (rid, name, v))
    R.check(HISTOGRAMS[role] in {h.name for h in st.histograms}, "%s Stats has %s" % (rid, HISTOGRAMS[role]))
    for h in st.histograms:
        name = "qmesh_" + re.sub(r"[^A-Za-z0-9_]", "_", h.name)
        R.eq(fams.get(name, {}).get("type"), "histogram", "%s %s is a histogram" % (rid, name))
        les = sorted(float(dict(k[1])["le"]) for k in parsed[rid]["samples"] if k[0] == name + "_bucket")
        R.eq(les, sorted(list(h.upper_bounds) + [math.inf]), "%s %s: a bucket per Stats bound and +Inf" % (rid, name))
        count, total = metric(rid, name + "_count"), metric(rid, name + "_sum")
        R.eq(metric(rid, name + "_bucket", le="+Inf"), count, "%s %s: +Inf bucket = _count" % (rid, name))
        # quiescent: the Stats read after the scrape has the same count
        R.eq(count, float(h.count), "%s %s_count = its Stats" % (rid, name))
        R.check(total is not None and 0 <= total and math.isclose(total, h.sum, rel_tol=1e-12, abs_tol=1e-12),
                "%s %s_sum %r = its Stats %r" % (rid, name, total, h.sum))
        if h.name == HISTOGRAMS[role]:
            hist_count[rid] = count
for f in ("NUVL_A", "NUVL_B"):
    handled = metric(f, "qmesh_submit_forwarded_total") + metric(f, "qmesh_hub_failed_total")
    R.eq(hist_count.get(f), handled, "%s submit_latency_seconds_count = forwarded + hub_failed" % f)
R.eq(sum(hist_count.get(f, 0) for f in ("NUVL_A", "NUVL_B")), float(TOTAL + INGRESS_OK),
     "the fronts' submit latencies count every request")
for hub in ("HUB_A", "HUB_B"):  # one observation per relay call (a batch of artifacts, or one)
    received = metric(hub, "qmesh_artifacts_received_total")
    R.check(hist_count.get(hub) is not None and 0 < hist_count[hub] <= received,
            "%s relay_latency_seconds_count %r in 1..%r (relay calls)" % (hub, hist_count.get(hub), received))
for p in ("PROVIDER_A", "PROVIDER_B", "PROVIDER_C"):
    votes = sum(metric(p, "qmesh_%s_total" % n) for n in ("reported", "report_rejected", "report_failed"))
    R.eq(hist_count.get(p), votes, "%s vote_latency_seconds_count = reported + rejected + failed" % p)
    R.check(votes >= TOTAL, "%s voted on every request (%r)" % (p, votes))
R.eq(hist_count.get("AUDITOR"), float(s.decided), "auditor decision_latency_seconds_count = Summary.decided")
R.eq(hist_count.get("AUDITOR"), metric("AUDITOR", "qmesh_decided_total"), "auditor: = qmesh_decided_total")
R.eq(metric("AUDITOR", "qmesh_requests_pending"), float(s.pending), "auditor qmesh_requests_pending = Summary.pending")
print("sample /metrics (NUVL_A):\n" + pages["NUVL_A"], flush=True)

# `qmesh summary --json`: the demo's summary numbers, from the running mesh
qs = subprocess.run([os.path.join(BIN, "qmesh"), "summary", "--topology", topo, "--json"], env=env,
                    capture_output=True, text=True, timeout=60)
R.eq(qs.returncode, 0, "qmesh summary ran (%s)" % qs.stderr.strip()[-300:])
js = json.loads(qs.stdout) if qs.returncode == 0 else {"hub_relays": {}, "providers": []}
for hub, n in js["hub_relays"].items():
    R.eq(metric(hub, "qmesh_relays_total"), float(n), "%s relays = the summary's" % hub)
for p in js["providers"]:
    R.eq(metric(p["id"], "qmesh_initiated_total"), float(p["initiations"]), "%s initiations = the summary's" % p["id"])
    for dom, n in p["initiations_by_domain"].items():
        R.eq(metric(p["id"], "qmesh_initiated_%s_total" % dom), float(n), "%s %s initiations" % (p["id"], dom))
    R.eq(metric(p["id"], "qmesh_evaluated_total"), float(p["evaluated"]), "%s evaluated" % p["id"])
    R.eq(metric(p["id"], "qmesh_byzantine_flips_total"), float(p["byzantine_flips"]), "%s flips" % p["id"])
    R.eq(metric("AUDITOR", "qmesh_provider_disagreements_total", provider=p["id"]), float(p["disagreements"]),
         "%s disagreements = the summary's" % p["id"])
    R.eq(metric("AUDITOR", "qmesh_provider_votes_total", provider=p["id"]), float(p["votes"]),
         "%s votes = the summary's" % p["id"])
for name in ("quorum_successes", "quorum_failures", "decided", "incomplete", "votes_accepted", "votes_rejected",
             "votes_duplicate", "votes_late"):
    R.eq(metric("AUDITOR", "qmesh_%s_total" % name), float(js.get(name, -1)), "auditor %s = the summary's" % name)
R.check(sum(metric(p, "qmesh_byzantine_flips_total") or 0 for p in ("PROVIDER_A", "PROVIDER_B", "PROVIDER_C")) > 0,
        "the Byzantine flips show in the metrics")

# the fronts: the requester's requests and the ingress' 3
accepted = sum(metric(f, "qmesh_submit_accepted_total") or 0 for f in ("NUVL_A", "NUVL_B"))
R.eq(accepted, float(TOTAL + INGRESS_OK), "the fronts accepted the batch and the ingress posts")
R.eq(metric("NUVL_A", "qmesh_http_ingress_responses_total", code="204"), float(INGRESS_OK), "ingress 204s counted")
R.eq(metric("NUVL_A", "qmesh_http_ingress_responses_total", code="413"), 3.0, "ingress 413s counted")
R.eq(metric("NUVL_A", "qmesh_http_ingress_responses_total", code="400"), 1.0, "ingress 400s counted")
R.eq(metric("NUVL_B", "qmesh_http_ingress_responses_total", code="204"), 0.0, "NUVL_B's ingress took nothing")
R.check(metric("HUB_A", "qmesh_http_ingress_responses_total", code="204") is None, "a hub has no ingress")

# ---- 3: a clean stop; a front whose hub is gone answers 503 ----
meshlib.stop(procs["HUB_A"])
t0 = time.time()
code, _, reply = curl(INGRESS, "--data-binary", "no hub")
R.eq(code, 503, "with its hub gone the front's ingress answers 503 (%r)" % reply[:200])
R.check(b"unavailable" in reply, "the 503 names the reason (%r)" % reply[:200])
print("hub gone: %d in %.1f s: %r" % (code, time.time() - t0, reply[:300]), flush=True)
for rid, _ in reversed(ROLES):
    rc = meshlib.stop(procs[rid])
    R.eq(rc, 0, "%s exits 0 on SIGTERM" % rid)

# ---- 4: with mutual TLS on, the HTTP side still reaches its own role (its own certificate) ----
work = tempfile.mkdtemp(prefix="qmesh-http-tls-")
subprocess.run([os.path.join(BIN, "qmesh"), "certs", "--out", work], check=True, capture_output=True)
ttext, tports = meshlib.topology_yaml(regions=1, extra="tls: { ca: %s/ca.crt, certs_dir: %s }\nkeys_dir: %s\n"
                                      % (work, work, keys))
ttopo = meshlib.write_topology(ttext)
textra = meshlib.free_ports(3)
while set(textra) & set(tports.values()):
    textra = meshlib.free_ports(3)
tprocs = {}
for rid in ["AUDITOR", "PROVIDER_A", "PROVIDER_B", "PROVIDER_C", "HUB_A", "NUVL_A"]:
    http = {"AUDITOR": ["--metrics-addr", "127.0.0.1:%d" % textra[0]],
            "NUVL_A": ["--metrics-addr", "127.0.0.1:%d" % textra[1], "--ingress-addr", "127.0.0.1:%d" % textra[2]]}
    args = meshlib.role_args(BIN, ttopo, rid, drain_ms=3000 if rid == "NUVL_A" else 0,
                             extra=http.get(rid, ["--metrics-addr", "off"]))
    tprocs[rid] = meshlib.spawn(args, env=meshlib.clean_env(), stderr=open(os.path.join(logs, "tls-" + rid + ".log"), "w"))
R.check(wait_http("http://127.0.0.1:%d/metrics" % textra[0]), "TLS: the auditor serves /metrics")
R.check(wait_http("http://127.0.0.1:%d/metrics" % textra[1]), "TLS: the front serves /metrics")
tbody = b'{"tls":1}'
deadline, code = time.time() + 20, 0
while time.time() < deadline and code != 204:  # the front's hub may still be starting
    code, _, reply = curl("http://127.0.0.1:%d/" % textra[2], "--data-binary", tbody.decode(), "-H", "X-Domain: storage")
    if code != 204:
        time.sleep(0.2)
R.eq(code, 204, "TLS: curl POST / answers 204")
deadline, dec = time.time() + 15, 0
while time.time() < deadline and dec < 1:
    code, _, page = http_get("http://127.0.0.1:%d/metrics" % textra[0])
    dec = parse_strict(page)["samples"].get(("qmesh_decided_total", (("id", "AUDITOR"), ("role", "auditor"))), 0) \
        if code == 200 else 0
    time.sleep(0.1)
R.eq(dec, 1.0, "TLS: the auditor's /metrics shows the request decided")
# Under mutual TLS a probe without a client certificate cannot ask the gRPC port, but
# /healthz answers it on the metrics port (what a kubelet probe would use then).
for name, port in (("auditor", textra[0]), ("front", textra[1])):
    code, _, page = http_get("http://127.0.0.1:%d/healthz" % port)
    R.eq((code, page), (200, "SERVING\n"), "TLS: the %s's /healthz is 200 SERVING" % name)
try:
    with grpc.insecure_channel("127.0.0.1:%d" % tports["AUDITOR"]) as ch:
        ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=3)
    R.check(False, "TLS: a plaintext Health/Check on the gRPC port is refused")
except grpc.RpcError as e:
    R.check(e.code() == grpc.StatusCode.UNAVAILABLE, "TLS: a plaintext Health/Check on the gRPC port fails (%s)" % e.code())
# Draining (SIGTERM, --drain-ms 3000): /healthz turns 503 NOT_SERVING before the role stops.
tprocs["NUVL_A"].send_signal(signal.SIGTERM)
deadline, code, page = time.time() + 2.5, 0, ""
while time.time() < deadline and code != 503:
    code, _, page = http_get("http://127.0.0.1:%d/healthz" % textra[1])
    time.sleep(0.02)
R.eq((code, page), (503, "NOT_SERVING\n"), "TLS: a draining front's /healthz is 503 NOT_SERVING")
for rid in reversed(list(tprocs)):
    R.eq(meshlib.stop(tprocs[rid]), 0, "TLS: %s exits 0" % rid)

for name in os.listdir(logs):
    log = open(os.path.join(logs, name)).read()
    R.check("AddressSanitizer" not in log and "runtime error" not in log, "%s: no sanitizer report" % name)
R.finish()
