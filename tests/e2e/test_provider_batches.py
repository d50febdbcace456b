#!/usr/bin/env python3
"""test_provider_batches: a provider's EvaluateBatch called straight from the test (no hub).

1 one call: every artifact gets its own status, in order; the good ones are decided as the
  reference formula says, signed with one signature (one vote batch per call) and taken by the
  auditor vote by vote; a malformed artifact and a short request_repr are refused alone; a vote
  too large for the audit log is refused by the auditor without taking the others down;
2 many calls at once: every one ends, every vote is reported, and votes of calls that arrive
  while a vote batch is in flight share the next signature (never more batches than calls);
3 a unary Evaluate (a lone vote) is answered at once;
4 SIGTERM: the provider and the auditor exit 0."""
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402
from meshlib import CHANNEL_OPTS, unary  # noqa: E402

import grpc  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
pb = meshlib.pb()
WORK = tempfile.mkdtemp(prefix="qmesh-provbatch-")
KEYS = os.path.join(WORK, "keys")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", KEYS], check=True, capture_output=True)

text, PORTS = meshlib.topology_yaml(deadline_ms=60000, extra="keys_dir: %s\n" % KEYS)
TOPO = meshlib.write_topology(text)
ENV = meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="none")
PROCS = meshlib.start_mesh(BIN, TOPO, PORTS, ENV, rids=["AUDITOR", "PROVIDER_A"], stderr=subprocess.DEVNULL)
AUD, PROV = "127.0.0.1:%d" % PORTS["AUDITOR"], "127.0.0.1:%d" % PORTS["PROVIDER_A"]
THRESHOLD = {"payments": 0.55, "identity": 0.60, "storage": 0.50}


def stats():
    s = unary(PROV, "/qmesh.v1.Provider/Stats", pb.StatsRequest(), pb.RoleStats)
    return {c.name: c.value for c in s.counters}


def artifact(tag, domain="payments", ctx="CTX_ALPHA", seq=0):
    return pb.Artifact(request_repr=hashlib.sha256(tag.encode()).digest(), verification_context=ctx,
                       domain=domain, sequence=seq, front_id="TEST").SerializeToString()


def want_initiated(tag, domain, ctx):
    """The reference formula (DESIGN.md), PROVIDER_A's secret A_KEY."""
    material = "PROVIDER_A|%s|%s|%s" % (domain, hashlib.sha256(tag.encode()).hexdigest(), ctx)
    d = hmac.new(b"A_KEY", material.encode(), hashlib.sha256).digest()
    score = (int.from_bytes(d[:8], "big") % 10_000_000) / 10_000_000.0
    score = min(score + (0.15 if ctx == "CTX_ALPHA" else 0.0), 1.0)
    return score >= THRESHOLD.get(domain, 0.60)


def evaluate_batch(items, timeout=30):
    with grpc.insecure_channel(PROV, options=CHANNEL_OPTS) as ch:
        fn = ch.unary_unary("/qmesh.v1.Provider/EvaluateBatch",
                            request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=pb.BatchReply.FromString)
        return fn(pb.ArtifactBatch(artifacts=items), timeout=timeout)


def lookup(tag):
    return unary(AUD, "/qmesh.v1.Auditor/Lookup",
                 pb.LookupRequest(request_repr_hex=hashlib.sha256(tag.encode()).hexdigest()), pb.LookupReply)


# ---- 1. one call, good and bad artifacts mixed ----
domains = ["payments", "identity", "storage", "weather"]
good = [("one-%d" % i, domains[i % 4], "CTX_ALPHA" if i % 3 else "SPOOF") for i in range(60)]
items = [artifact(t, d, c, i) for i, (t, d, c) in enumerate(good[:30])]
items.append(b"\x0a\x10abc")  # a length past the end: malformed
items.append(pb.Artifact(request_repr=b"short", domain="payments").SerializeToString())
items.append(artifact("one-big", domain="d" * 70000))  # an Outcome the auditor refuses (too large)
items += [artifact(t, d, c, 30 + i) for i, (t, d, c) in enumerate(good[30:])]
before = stats()
reply = evaluate_batch(items)
after = stats()
codes = [it.code for it in reply.items]
R.eq(len(codes), len(items), "one status per artifact")
R.eq(codes[:30] + codes[33:], [0] * 60, "the good artifacts are OK")
R.eq(codes[30:33], [3, 3, 9], "malformed and short refused (INVALID_ARGUMENT), outsized refused by the auditor "
     "(FAILED_PRECONDITION)")
R.check("malformed" in reply.items[30].message, "the malformed one says so: %r" % reply.items[30].message)
R.check("32 bytes" in reply.items[31].message, "the short one says why: %r" % reply.items[31].message)
R.check("auditor refused" in reply.items[32].message, "the outsized one carries the auditor's reason: %r" %
        reply.items[32].message)
d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
R.eq(d.get("evaluated"), 61, "61 artifacts evaluated (the malformed and the short one are not)")
R.eq(d.get("refused_invalid"), 2, "two refused as invalid")
R.eq(d.get("reported"), 60, "60 votes taken by the auditor")
R.eq(d.get("report_rejected"), 1, "one vote refused by the auditor")
R.eq(d.get("report_batches"), 1, "one call, one signed vote batch")
bad_votes = 0
for t, dom, c in good:
    lk = lookup(t)
    mine = [v for v in lk.votes if v.provider_id == "PROVIDER_A"]
    if len(mine) != 1 or not mine[0].verified or mine[0].initiated != want_initiated(t, dom, c):
        bad_votes += 1
R.eq(bad_votes, 0, "every good vote is at the auditor, verified, and decided as the reference formula says")

# ---- 2. many calls at once ----
N_CALLS, PER_CALL = 12, 80
results = [None] * N_CALLS


def one_call(k):
    try:
        r = evaluate_batch([artifact("many-%d-%d" % (k, i), seq=1000 + k * PER_CALL + i) for i in range(PER_CALL)])
        results[k] = [it.code for it in r.items]
    except grpc.RpcError as e:
        results[k] = e.code().name


before = stats()
threads = [threading.Thread(target=one_call, args=(k,)) for k in range(N_CALLS)]
for th in threads:
    th.start()
for th in threads:
    th.join(60)
after = stats()
d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
R.eq(results, [[0] * PER_CALL] * N_CALLS, "every concurrent call ends with every artifact OK")
R.eq(d.get("reported"), N_CALLS * PER_CALL, "every vote reported")
R.check(1 <= d.get("report_batches", 0) <= N_CALLS,
        "vote batches (%d) never outnumber calls (%d)" % (d.get("report_batches", 0), N_CALLS))

# ---- 3. a lone vote goes at once ----
t0 = time.time()
unary(PROV, "/qmesh.v1.Provider/Evaluate", pb.Artifact.FromString(artifact("lone", seq=5000)), pb.EvaluateReply)
R.check(time.time() - t0 < 2.0, "a unary Evaluate is answered at once (%.3f s)" % (time.time() - t0))
R.eq(len([v for v in lookup("lone").votes if v.provider_id == "PROVIDER_A"]), 1, "and its vote is at the auditor")

# ---- 4. clean exit ----
R.eq(meshlib.stop(PROCS["PROVIDER_A"], signal.SIGTERM), 0, "the provider exits 0 on SIGTERM")
R.eq(meshlib.stop(PROCS["AUDITOR"], signal.SIGTERM), 0, "the auditor exits 0 on SIGTERM")
R.finish()
