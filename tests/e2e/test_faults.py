"""test_faults: the mesh under faults, through the real binaries, each role its own process
on free loopback ports (docs/FAULTS.md describes each scenario and the figures it showed).

 1 kill -9 the region-a front mid-run: the requester fails over by itself, every request
   is decided and the counts equal the independent model (tests/reference_model.py);
 2 kill -9 a provider mid-run: every request still decided (the rest incomplete, counted);
   each decision equals the model restricted to the votes that reached the auditor; a
   second pass of the same requests is all LATE, never double counted;
 3 kill -9 the auditor mid-run, restart it on the same --audit-log: it replays, providers
   resend what it had not acknowledged, decisions equal the model, the log verifies;
 4 SIGSTOP a hub for 3 s, then SIGCONT: backpressure (refused_full, retried), then
   recovery; counts equal the model;
 5 overload (WORKER_COUNT=2, POST_QUEUE_MAX=50, 5000 requests at concurrency 128):
   every request decided or refused visibly, none lost;
 6 SIGTERM: every role exits 0; a provider stopped under load finishes what it took in;
 7 the audit log tampered with (one byte flipped, a torn tail): `qmesh audit verify` names
   the record; the auditor refuses to start on an edited log and cuts a torn tail.

Every scenario ends with: decided == requests sent, nothing pending, and no vote lost
(the auditor's votes_accepted equals what the providers' Stats say they reported)."""
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402
from meshlib import CHANNEL_OPTS, PROVIDERS, SERVICE, unary, wait_serving  # noqa: E402

ap = meshlib.arg_parser()
ap.add_argument("--only", default="", help="comma-separated scenario numbers (default: all)")
ARGS = ap.parse_args()
BIN = ARGS.bin
ONLY = {s for s in ARGS.only.split(",") if s}
QMESH = os.path.join(BIN, "qmesh")
R = meshlib.Results()
pb = meshlib.pb()
FIGURES = {}  # scenario -> what it measured (printed at the end; docs/FAULTS.md quotes them)

_spec = importlib.util.spec_from_file_location("reference_model",
                                               os.path.join(meshlib.ROOT, "tests", "reference_model.py"))
refmodel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refmodel)


def log(msg):
    print("[%6.1fs] %s" % (time.time() - T0, msg), flush=True)


T0 = time.time()
KEYS = tempfile.mkdtemp(prefix="qmesh-fault-keys-")
subprocess.run([QMESH, "keygen", "--out", KEYS], check=True, capture_output=True)
WORK = tempfile.mkdtemp(prefix="qmesh-faults-")
# ---------------------------------------------------------------- the model ----
def model(seed, total, byzantine, byzantine_at, quorum=2):
    """The reference model's totals (its command line, as test_demo uses it)."""
    args = [sys.executable, os.path.join(meshlib.ROOT, "tests", "reference_model.py"), "--seed", str(seed),
            "--total", str(total), "--byzantine", byzantine, "--byzantine-at", str(byzantine_at),
            "--quorum", str(quorum)]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def model_votes(seed, total, byzantine, byzantine_at):
    """Per request: (repr, {provider: initiated}) from the model's own formulas."""
    secrets = dict(zip(PROVIDERS, ["A_KEY", "B_KEY", "C_KEY"]))
    domains = refmodel.parse_domains("payments=0.55,identity=0.60,storage=0.50")
    thresholds = dict(domains)
    rng = refmodel.random.Random()
    rng.seed(seed)
    byz, at = refmodel.pick_byzantine(rng, PROVIDERS, byzantine, byzantine_at, total)
    out = []
    for i in range(total):
        ctx = "CTX_ALPHA" if rng.random() > 0.1 else "SPOOF"
        domain = rng.choice([d for d, _ in domains])
        repr_ = hashlib.sha256(('{"i":%d}' % i).encode()).digest()
        votes = {}
        for p in PROVIDERS:
            init = refmodel.score(secrets[p], p, domain, repr_, ctx, "CTX_ALPHA") >= thresholds[domain]
            votes[p] = (not init) if (p == byz and i >= at) else init
        out.append((repr_, votes))
    return out


# ------------------------------------------------------------------ the mesh ----
class Mesh:
    """One topology, each role its own process, started and stopped one by one."""

    def __init__(self, name, env, deadline_ms=3000, audit_log=None, drain_ms=0):
        self.name = name
        text, self.ports = meshlib.topology_yaml(deadline_ms=deadline_ms, extra="keys_dir: %s\n" % KEYS)
        self.topo = meshlib.write_topology(text)
        self.env = meshlib.clean_env(**env)
        self.audit_log = audit_log
        self.drain_ms = drain_ms
        self.procs = {}
        self.errs = {}

    def addr(self, rid):
        return "127.0.0.1:%d" % self.ports[rid]

    def start(self, rid, wait=True, extra=()):
        args = meshlib.role_args(BIN, self.topo, rid, drain_ms=self.drain_ms, extra=extra, audit_log=self.audit_log)
        err = open(os.path.join(WORK, "%s-%s-%d.err" % (self.name, rid, len(self.errs))), "w+")
        self.errs[rid] = err
        self.procs[rid] = meshlib.spawn(args, env=self.env, stdout=subprocess.DEVNULL, stderr=err)
        if wait:
            wait_serving(self.addr(rid))
        return self.procs[rid]

    def start_all(self):
        for rid in meshlib.MESH:
            self.start(rid, wait=False)
        for rid in self.procs:
            wait_serving(self.addr(rid))
        return self

    def stderr(self, rid):
        f = self.errs[rid]
        f.flush()
        f.seek(0)
        return f.read()

    def kill(self, rid, sig=signal.SIGKILL):
        p = self.procs[rid]
        p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            p.wait(30)
        return p

    def stats(self, rid):
        s = unary(self.addr(rid), "/qmesh.v1.%s/Stats" % SERVICE[meshlib.role_of(rid)], pb.StatsRequest(),
                          pb.RoleStats, timeout=10)
        return {c.name: c.value for c in s.counters}

    def summary(self):
        return unary(self.addr("AUDITOR"), "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary)

    def summary_json(self):
        p = subprocess.run([QMESH, "summary", "--topology", self.topo, "--json"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, "qmesh summary: " + p.stderr
        return json.loads(p.stdout)

    def lookups(self, reprs):
        """Lookup of each request over one channel; None where the auditor has none."""
        out = []
        with grpc.insecure_channel(self.addr("AUDITOR"), options=CHANNEL_OPTS) as ch:
            fn = ch.unary_unary("/qmesh.v1.Auditor/Lookup", request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=pb.LookupReply.FromString)
            for r in reprs:
                try:
                    out.append(fn(pb.LookupRequest(request_repr_hex=r.hex()), timeout=10))
                except grpc.RpcError:
                    out.append(None)
        return out

    def requester(self, concurrency=8, env=None, batch=0):
        e = dict(self.env)
        e.update({k: str(v) for k, v in (env or {}).items()})
        return meshlib.spawn([os.path.join(BIN, "qmesh-requester"), "--topology", self.topo, "--concurrency",
                              str(concurrency), "--batch", str(batch)], env=e, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)

    def wait_decided(self, n, timeout=60):
        """Polls the auditor until |n| requests are decided and none is pending."""
        deadline = time.time() + timeout
        s = None
        while time.time() < deadline:
            try:
                s = self.summary()
                if s.decided >= n and s.pending == 0:
                    return s
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        return s

    def wait_progress(self, n, timeout=60):
        """Waits until the auditor has seen a first vote for |n| requests (the run is under way)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.summary()
            if s.decided + s.pending >= n:
                return s
            time.sleep(0.01)
        raise AssertionError("%s: the run never reached %d requests" % (self.name, n))

    def stop_all(self, expect_zero=True):
        """SIGTERM to every live role; each must exit 0."""
        codes = {}
        for rid, p in self.procs.items():
            if p.poll() is None:
                codes[rid] = meshlib.stop(p, signal.SIGTERM, timeout=20)
        if expect_zero:
            R.eq({k: v for k, v in codes.items() if v != 0}, {}, "%s: every role exits 0 on SIGTERM" % self.name)
        return codes


def parse_requester(out):
    """'sent=.. accepted=.. ...' -> dict."""
    kv = {}
    for tok in out.split():
        k, _, v = tok.partition("=")
        kv[k] = int(v) if v.lstrip("-").isdigit() else v
    return kv


def finish_requester(p, timeout=180):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, parse_requester(out), err


def compare_model(name, got_providers, s, want):
    """Summary (proto) against the model: quorum outcome and per-provider votes/disagreements."""
    R.eq((s.quorum_successes, s.quorum_failures), (want["quorum_successes"], want["quorum_failures"]),
         name + ": quorum successes/failures equal the model")
    got = {p.id: (p.votes, p.disagreements, p.initiations) for p in got_providers}
    exp = {p: (want["votes"][p], want["disagreements"][p], want["initiations"][p]) for p in PROVIDERS}
    R.eq(got, exp, name + ": per-provider votes/disagreements/initiations equal the model")
    R.eq(s.most_inconsistent, want["most_inconsistent"], name + ": most inconsistent provider")


def reported(mesh, pids):
    return {p: mesh.stats(p).get("reported", 0) for p in pids}


def enabled(n):
    return not ONLY or str(n) in ONLY


SEED, BYZ, BYZ_AT = 7, "PROVIDER_C", 400
N = 600


def base_env(**over):
    e = dict(RANDOM_SEED=SEED, TOTAL_REQUESTS=N, BYZANTINE_PROVIDER=BYZ, BYZANTINE_AT=BYZ_AT)
    e.update(over)
    return e


WANT = model(SEED, N, BYZ, BYZ_AT)


def closing(name, mesh, s, sent, nproviders_alive=3, expect_model=True):
    """What every scenario ends with."""
    R.eq(s.decided + s.pending, sent, name + ": decided + pending == requests sent")
    R.eq(s.pending, 0, name + ": nothing pending")
    if expect_model:
        compare_model(name, s.by_provider, s, WANT)


# ---- 1. kill -9 the region-a front mid-run ----
def scenario_front():
    name = "1 front kill -9"
    m = Mesh("front", base_env()).start_all()
    req = m.requester(concurrency=8)
    m.wait_progress(120)
    m.kill("NUVL_A")
    log("%s: NUVL_A killed at %d requests seen by the auditor" % (name, m.summary().decided))
    rc, out, err = finish_requester(req)
    R.eq(rc, 0, name + ": requester exits 0 (stderr: %s)" % err[-300:])
    R.eq((out.get("sent"), out.get("accepted"), out.get("refused"), out.get("failed")), (N, N, 0, 0),
         name + ": requester sent/accepted/refused/failed")
    R.check(out.get("failovers", 0) >= 1, name + ": the requester failed over by itself (%r)" % out)
    s = m.wait_decided(N)
    closing(name, m, s, N)
    R.eq(s.decided, N, name + ": every request decided")
    R.eq(s.incomplete, 0, name + ": none incomplete")
    R.eq(s.votes_accepted, N * 3, name + ": votes accepted == requests x providers")
    rep = reported(m, PROVIDERS)
    # a request the dead front had forwarded before it died is sent again by the requester:
    # the providers report it twice, the auditor counts the second as duplicate/late
    R.eq(sum(rep.values()), s.votes_accepted + s.votes_duplicate + s.votes_late,
         name + ": every reported vote is accounted (accepted + duplicate + late)")
    R.eq(s.votes_rejected, 0, name + ": nothing rejected")
    js = m.summary_json()
    R.eq(sum(js["hub_relays"].values()) - s.votes_duplicate - s.votes_late, N * 3,
         name + ": hub relays minus re-sent == requests x providers")
    FIGURES[name] = dict(requester=out, decided=s.decided, duplicate=s.votes_duplicate, late=s.votes_late,
                         relays=js["hub_relays"])
    m.stop_all()


# ---- 2. kill -9 a provider mid-run ----
def scenario_provider():
    name = "2 provider kill -9"
    m = Mesh("provider", base_env(), deadline_ms=3000).start_all()
    req = m.requester(concurrency=8)
    m.wait_progress(200)
    before = m.stats("PROVIDER_B").get("reported", 0)
    m.kill("PROVIDER_B")
    t_kill = time.time()
    log("%s: PROVIDER_B killed after it reported %d" % (name, before))
    rc, out, err = finish_requester(req)
    after_kill = time.time() - t_kill
    R.eq(rc, 0, name + ": requester exits 0 (stderr: %s)" % err[-300:])
    R.eq((out.get("accepted"), out.get("failed"), out.get("refused")), (N, 0, 0),
         name + ": every request accepted (hubs answer OK when one provider took it)")
    s = m.wait_decided(N, timeout=30)
    closing(name, m, s, N, expect_model=False)
    R.eq(s.decided, N, name + ": every request decided")
    R.check(s.incomplete > 0, name + ": requests without B's vote are decided incomplete (%d)" % s.incomplete)
    votes = {p.id: p.votes for p in s.by_provider}
    R.check(votes["PROVIDER_B"] < N, name + ": the dead provider's votes < sent (%d)" % votes["PROVIDER_B"])
    R.check(votes["PROVIDER_B"] >= before, name + ": every vote B reported before it died is counted")
    R.eq(s.incomplete, N - votes["PROVIDER_B"], name + ": incomplete == requests B never voted on")
    rep = reported(m, ["PROVIDER_A", "PROVIDER_C"])
    R.eq(rep, {"PROVIDER_A": N, "PROVIDER_C": N}, name + ": live providers reported every request")
    R.eq(s.votes_accepted, rep["PROVIDER_A"] + rep["PROVIDER_C"] + votes["PROVIDER_B"],
         name + ": votes accepted == sum of reported (B: what the auditor holds)")
    R.eq((s.votes_duplicate, s.votes_late, s.votes_rejected), (0, 0, 0), name + ": no duplicate, late, rejected")
    # Each decision equals the model's votes restricted to those that reached the auditor.
    mv = model_votes(SEED, N, BYZ, BYZ_AT)
    mismatch, exp_succ = [], 0
    exp_dis = {p: 0 for p in PROVIDERS}
    for i, ((repr_, votes_i), lk) in enumerate(zip(mv, m.lookups([r for r, _ in mv]))):
        if lk is None:
            mismatch.append((i, "not found"))
            continue
        present = {v.provider_id: v.initiated for v in lk.votes}
        want_state = "decided" if len(present) == 3 else "incomplete"
        ok = sum(present.values()) >= 2
        exp_succ += ok
        for p, v in present.items():
            exp_dis[p] += v != ok
        if any(votes_i[p] != v for p, v in present.items()) or lk.state != want_state or lk.quorum_success != ok:
            mismatch.append((i, lk.state, present))
    R.eq(mismatch[:5], [], name + ": every request's votes and decision equal the model's")
    R.eq((s.quorum_successes, s.quorum_failures), (exp_succ, N - exp_succ),
         name + ": quorum successes/failures equal the model over the votes that arrived")
    R.eq({p.id: p.disagreements for p in s.by_provider}, exp_dis, name + ": disagreements equal the model's")
    # later votes: the same requests again, B back: every vote is LATE, nothing double counted.
    # (Hubs fail fast on a provider they cannot reach and redial it within their reconnect
    # backoff, at most 1 s: B takes part in the second pass once they have.)
    m.start("PROVIDER_B")
    time.sleep(1.5)
    req = m.requester(concurrency=8, env=dict(TOTAL_REQUESTS=100, FAILOVER_AT=50))
    rc, out2, err = finish_requester(req)
    R.eq((rc, out2.get("accepted")), (0, 100), name + ": second pass of 100 requests accepted")
    deadline = time.time() + 20
    while time.time() < deadline:
        s2 = m.summary()
        again = reported(m, PROVIDERS)
        want_late = again["PROVIDER_A"] - N + again["PROVIDER_C"] - N + again["PROVIDER_B"]
        if s2.votes_late >= want_late:
            break
        time.sleep(0.05)
    R.eq(s2.votes_late, want_late, name + ": every vote of the second pass is LATE (A, C: 100 each; B: %d)"
         % again["PROVIDER_B"])
    R.eq((again["PROVIDER_A"] - N, again["PROVIDER_C"] - N), (100, 100), name + ": A and C reported the 100 again")
    R.eq((s2.decided, s2.votes_accepted, s2.quorum_successes, s2.incomplete),
         (s.decided, s.votes_accepted, s.quorum_successes, s.incomplete), name + ": late votes change no count")
    R.eq({p.id: p.votes for p in s2.by_provider}, votes, name + ": per-provider votes unchanged by late votes")
    FIGURES[name] = dict(b_votes=votes["PROVIDER_B"], incomplete=s.incomplete, successes=s.quorum_successes,
                         failures=s.quorum_failures, late_after_second_pass=s2.votes_late,
                         requester_seconds_after_kill=round(after_kill, 2))
    m.stop_all()


# ---- 3. kill -9 the auditor mid-run; restart it on the same log ----
def scenario_auditor():
    name = "3 auditor kill -9 + replay"
    audit_log = os.path.join(WORK, "audit-3.log")
    m = Mesh("auditor", base_env(), deadline_ms=5000, audit_log=audit_log).start_all()
    req = m.requester(concurrency=8)
    m.wait_progress(200)
    m.kill("AUDITOR")
    size = os.path.getsize(audit_log)
    log("%s: auditor killed; log %d bytes" % (name, size))
    time.sleep(1.0)
    t_restart = time.time()
    m.start("AUDITOR")
    serving_after = time.time() - t_restart
    st = m.stats("AUDITOR")
    replayed = st.get("audit_log_replayed", 0)
    R.check(replayed > 0, name + ": the restarted auditor replayed its log (%d votes)" % replayed)
    rc, out, err = finish_requester(req)
    req_done = time.time() - t_restart
    R.eq(rc, 0, name + ": requester exits 0 (stderr: %s)" % err[-300:])
    R.eq((out.get("accepted"), out.get("failed"), out.get("refused")), (N, 0, 0), name + ": requester")
    s = m.wait_decided(N, timeout=90)
    recovered = time.time() - t_restart
    closing(name, m, s, N)
    R.eq((s.decided, s.incomplete), (N, 0), name + ": every request decided, none incomplete")
    R.eq(s.votes_accepted, N * 3, name + ": votes accepted (replayed + new) == requests x providers")
    rep = reported(m, PROVIDERS)
    retries = sum(m.stats(p).get("report_retries", 0) for p in PROVIDERS)
    failed = sum(m.stats(p).get("report_failed", 0) for p in PROVIDERS)
    R.eq(failed, 0, name + ": no provider gave up on a vote")
    # a vote logged but not acknowledged before the kill is offered again: DUPLICATE/LATE now
    R.eq(sum(rep.values()), s.votes_accepted, name + ": votes accepted == sum of the providers' reported")
    R.eq(s.audit_log_records, N * 3, name + ": the log holds one record per accepted vote")
    js = m.summary_json()
    R.eq(js["decided"], N, name + ": qmesh summary --json agrees")
    m.stop_all()
    p = subprocess.run([QMESH, "audit", "verify", audit_log, "--topology", m.topo, "--keys", KEYS],
                       capture_output=True, text=True)
    R.eq(p.returncode, 0, name + ": qmesh audit verify passes (%s%s)" % (p.stdout.strip(), p.stderr.strip()))
    R.check("%d records" % (N * 3) in p.stdout, name + ": verify counts every record: " + p.stdout.strip())
    FIGURES[name] = dict(log_bytes_at_kill=size, replayed=replayed, report_retries=retries,
                         duplicate=s.votes_duplicate, late=s.votes_late, seconds_to_all_decided=round(recovered, 2),
                         requester_done_after_restart_s=round(req_done, 2),
                         auditor_serving_after_s=round(serving_after, 3))
    return audit_log, m.topo


# ---- 4. SIGSTOP a hub for 3 s ----
def scenario_hub_stop():
    name = "4 hub SIGSTOP 3 s"
    # a long deadline: a fan-out cut by the stop reaches the other providers only after SIGCONT
    m = Mesh("hubstop", base_env(WORKER_COUNT=2, POST_QUEUE_MAX=3), deadline_ms=10000).start_all()
    req = m.requester(concurrency=8)
    m.wait_progress(60)
    m.kill("HUB_A", signal.SIGSTOP)
    t_stop = time.time()
    time.sleep(3.0)
    during = m.stats("NUVL_A")
    m.kill("HUB_A", signal.SIGCONT)
    stopped = time.time() - t_stop
    rc, out, err = finish_requester(req)
    R.eq(rc, 0, name + ": requester exits 0 (stderr: %s)" % err[-300:])
    R.eq((out.get("accepted"), out.get("failed"), out.get("refused"), out.get("failovers")), (N, 0, 0, 0),
         name + ": every request accepted, no failover (a stopped hub is slow, not gone)")
    s = m.wait_decided(N)
    closing(name, m, s, N)
    R.eq((s.decided, s.incomplete), (N, 0), name + ": every request decided, none incomplete")
    R.eq(s.votes_accepted, N * 3, name + ": votes accepted == requests x providers")
    rep = reported(m, PROVIDERS)
    R.eq(sum(rep.values()), s.votes_accepted, name + ": votes accepted == sum of reported")
    front = m.stats("NUVL_A")
    R.check(during.get("submit_refused_full", 0) > 0,
            name + ": backpressure while the hub was stopped: NUVL_A refused_full=%d" %
            during.get("submit_refused_full", 0))
    R.eq(front["submit_forwarded"], front["submit_accepted"], name + ": NUVL_A forwarded all it accepted")
    js = m.summary_json()
    R.eq(js["hub_relays"], {"HUB_A": WANT["hub_relays"]["0"], "HUB_B": WANT["hub_relays"]["1"]},
         name + ": relays per hub equal the model (nothing resent)")
    FIGURES[name] = dict(stopped_s=round(stopped, 2), refused_full_during=during.get("submit_refused_full", 0),
                         refused_full_total=front.get("submit_refused_full", 0), forwarded=front["submit_forwarded"])
    m.stop_all()


# ---- 5. overload ----
def scenario_overload():
    name = "5 overload"
    total = 5000
    over = dict(RANDOM_SEED=11, TOTAL_REQUESTS=total, BYZANTINE_PROVIDER="PROVIDER_B", BYZANTINE_AT=3000,
                WORKER_COUNT=2, POST_QUEUE_MAX=50)
    want = model(11, total, "PROVIDER_B", 3000)
    text, _ = meshlib.topology_yaml(deadline_ms=10000)
    topo = meshlib.write_topology(text)
    t = time.time()
    p = subprocess.run([QMESH, "demo", "--topology", topo, "--json", "--concurrency", "128"],
                       env=meshlib.clean_env(**over), capture_output=True, text=True, timeout=300)
    took = time.time() - t
    R.eq(p.returncode, 0, name + ": demo exit 0 (stderr: %s)" % p.stderr[-400:])
    if p.returncode == 0:
        js = json.loads(p.stdout)
        rq = js["requester"]
        R.eq(rq["refused"] + js["decided"], total, name + ": refused + decided == requests")
        R.eq((js["decided"], js["pending"], js["incomplete"], rq["failed"], rq["refused"]), (total, 0, 0, 0, 0),
             name + ": every request decided (none refused for good, none failed)")
        R.check(rq["retried_busy"] > 0, name + ": the requester retried after RESOURCE_EXHAUSTED (%d)" %
                rq["retried_busy"])
        R.eq(js["votes_accepted"], total * 3, name + ": votes accepted == requests x providers")
        R.eq((js["quorum_successes"], js["quorum_failures"]), (want["quorum_successes"], want["quorum_failures"]),
             name + ": quorum outcome equals the model")
        R.eq({q["id"]: q["disagreements"] for q in js["providers"]}, want["disagreements"],
             name + ": disagreements equal the model")
        FIGURES[name + " (demo)"] = dict(seconds=round(took, 1), retried_busy=rq["retried_busy"],
                                         rate=js.get("e2e_rate"), decided=js["decided"])
    # the same load on a mesh we keep, to read every role's refused_full counter; this time in
    # Front/SubmitBatch calls of up to 32, so the front refuses item by item inside a batch
    m = Mesh("overload", over, deadline_ms=10000).start_all()
    t = time.time()
    req = m.requester(concurrency=128, batch=32)
    rc, out, err = finish_requester(req, timeout=300)
    R.eq(rc, 0, name + ": requester exit 0 (stderr %s)" % err[-300:])
    s = m.wait_decided(total)
    took2 = time.time() - t
    R.eq(out.get("refused", -1) + s.decided, total, name + ": requester refused + decided == requests")
    R.eq((s.decided, s.pending, s.votes_accepted), (total, 0, total * 3), name + ": all decided, no vote lost")
    full = {}
    for rid in ["NUVL_A", "NUVL_B", "HUB_A", "HUB_B"] + PROVIDERS + ["AUDITOR"]:
        st = m.stats(rid)
        full[rid] = st.get("submit_refused_full", st.get("refused_full", 0))
    R.check(sum(full.values()) > 0, name + ": refused_full counted somewhere: %r" % full)
    R.check(full["NUVL_A"] + full["NUVL_B"] > 0, name + ": fronts refused items of SubmitBatch calls: %r" % full)
    R.check(int(out.get("retried_busy", 0)) > 0 and 0 < int(out.get("calls", 0)) < total,
            name + ": the requester retried refused items, in batches: %r" % out)
    rep = reported(m, PROVIDERS)
    R.eq(sum(rep.values()), s.votes_accepted, name + ": votes accepted == sum of reported")
    R.eq((s.quorum_successes, s.quorum_failures), (want["quorum_successes"], want["quorum_failures"]),
         name + ": quorum outcome equals the model (kept mesh)")
    FIGURES[name] = dict(seconds=round(took2, 1), refused_full=full, requester=out)
    m.stop_all()


# ---- 6. SIGTERM ----
def scenario_sigterm():
    name = "6 SIGTERM"
    m = Mesh("sigterm", base_env(), deadline_ms=3000, drain_ms=200).start_all()
    req = m.requester(concurrency=8)
    m.wait_progress(200)
    # sample B's Stats until it stops answering: every vote it reported must be at the auditor
    last = {"reported": 0, "evaluated": 0}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                st = m.stats("PROVIDER_B")
                last.update(reported=st.get("reported", 0), evaluated=st.get("evaluated", 0))
            except grpc.RpcError:
                pass
            time.sleep(0.005)

    th = threading.Thread(target=sampler)
    th.start()
    time.sleep(0.05)
    p = m.procs["PROVIDER_B"]
    t = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(30)
    except subprocess.TimeoutExpired:
        code = None
    took = time.time() - t
    stop.set()
    th.join()
    R.eq(code, 0, name + ": a provider under load exits 0 on SIGTERM")
    R.check("stopped on signal 15" in m.stderr("PROVIDER_B"), name + ": the provider says it stopped on SIGTERM")
    rc, out, err = finish_requester(req)
    R.eq((rc, out.get("accepted")), (0, N), name + ": every request accepted (stderr %s)" % err[-300:])
    s = m.wait_decided(N, timeout=30)
    closing(name, m, s, N, expect_model=False)
    votes = {q.id: q.votes for q in s.by_provider}
    R.check(votes["PROVIDER_B"] >= last["reported"],
            name + ": every vote B reported (last seen %d) is at the auditor (%d)" % (last["reported"],
                                                                                   votes["PROVIDER_B"]))
    # what B took in, it finished: every artifact it had evaluated when it last answered
    # Stats (a few ms before its server stopped taking calls) has its vote at the auditor
    R.check(votes["PROVIDER_B"] >= last["evaluated"],
            name + ": every artifact B evaluated (last seen %d) has its vote at the auditor (%d)"
            % (last["evaluated"], votes["PROVIDER_B"]))
    hubs = {h: m.stats(h) for h in ("HUB_A", "HUB_B")}
    failed = sum(h["relays_failed"] for h in hubs.values())
    rep = reported(m, ["PROVIDER_A", "PROVIDER_C"])
    R.eq(s.votes_accepted, sum(rep.values()) + votes["PROVIDER_B"], name + ": votes accepted == reported")
    R.eq(s.incomplete, N - votes["PROVIDER_B"], name + ": the requests after B left are incomplete, counted")
    FIGURES[name] = dict(drain_seconds=round(took, 2), b_votes=votes["PROVIDER_B"],
                         b_last_seen_reported=last["reported"], b_last_seen_evaluated=last["evaluated"],
                         relays_failed=failed)
    # every other role: SIGTERM, exit 0, "stopped on signal 15"
    codes = {}
    for rid in ["NUVL_A", "NUVL_B", "HUB_A", "HUB_B", "PROVIDER_A", "PROVIDER_C", "AUDITOR"]:
        codes[rid] = meshlib.stop(m.procs[rid], signal.SIGTERM, timeout=20)
        R.check("stopped on signal 15" in m.stderr(rid), name + ": %s says it stopped on SIGTERM" % rid)
    R.eq(codes, {k: 0 for k in codes}, name + ": every role exits 0 on SIGTERM")


# ---- 7. tampered audit log ----
def records_of(path):
    """[(offset, length)] of each record: "QMA1", u32 big-endian length, bytes, 32-byte chain hash."""
    data = open(path, "rb").read()
    out, off = [], 0
    while off + 8 <= len(data):
        n = int.from_bytes(data[off + 4:off + 8], "big")
        out.append((off, n))
        off += 8 + n + 32
    return out


def scenario_tamper(source_log, topo):
    name = "7 audit log tamper"
    if not source_log:
        source_log = os.path.join(WORK, "audit-7.log")
        m = Mesh("tamper-src", base_env(TOTAL_REQUESTS=100), audit_log=source_log).start_all()
        req = m.requester(concurrency=4, env=dict(TOTAL_REQUESTS=100))
        finish_requester(req)
        m.wait_decided(100)
        m.stop_all()
        topo = m.topo
    recs = records_of(source_log)
    R.check(len(recs) >= 100, name + ": the source log has records (%d)" % len(recs))
    verify = [QMESH, "audit", "verify", "--topology", topo, "--keys", KEYS]
    # one byte flipped in the middle of the middle record
    k = len(recs) // 2
    off, n = recs[k]
    flipped = os.path.join(WORK, "flipped.log")
    shutil.copy(source_log, flipped)
    with open(flipped, "r+b") as f:
        f.seek(off + 8 + n // 2)
        b = f.read(1)
        f.seek(off + 8 + n // 2)
        f.write(bytes([b[0] ^ 0x01]))
    p = subprocess.run(verify + [flipped], capture_output=True, text=True)
    where = "record %d at byte %d" % (k, off)
    R.check(p.returncode != 0, name + ": verify fails on a flipped byte")
    R.check(where in p.stderr, name + ": verify names %s: %s" % (where, p.stderr.strip()))
    text, ports = meshlib.topology_yaml(extra="keys_dir: %s\n" % KEYS)
    t2 = meshlib.write_topology(text)
    aud = meshlib.spawn([os.path.join(BIN, "qmesh-auditor"), "--topology", t2, "--id", "AUDITOR",
                         "--audit-log", flipped], env=meshlib.clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        _, err = aud.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        aud.kill()
        _, err = aud.communicate()
    R.check(aud.returncode not in (0, None), name + ": the auditor refuses to start on the edited log (%r)" %
            aud.returncode)
    R.check(where in err, name + ": the auditor names %s: %s" % (where, err.strip()[-300:]))
    FIGURES[name + " flip"] = dict(verify=p.stderr.strip(), auditor=err.strip().splitlines()[-1] if err else "")
    # a flipped header byte (the length) is named too
    hdr = os.path.join(WORK, "header.log")
    shutil.copy(source_log, hdr)
    with open(hdr, "r+b") as f:
        f.seek(off + 4)
        f.write(b"\xff")
    p = subprocess.run(verify + [hdr], capture_output=True, text=True)
    R.check(p.returncode != 0 and where in p.stderr, name + ": a broken header is named: " + p.stderr.strip())
    # truncated in the middle of record k: a torn tail
    torn = os.path.join(WORK, "torn.log")
    shutil.copy(source_log, torn)
    cut = off + 8 + n // 2
    os.truncate(torn, cut)
    p = subprocess.run(verify + [torn], capture_output=True, text=True)
    R.check(p.returncode != 0, name + ": verify reports the torn tail as a failure")
    msg = "%d intact records, then an incomplete record of %d bytes at byte %d" % (k, cut - off, off)
    R.check(msg in p.stderr, name + ": verify says %r: %s" % (msg, p.stderr.strip()))
    FIGURES[name + " torn"] = dict(verify=p.stderr.strip())
    aud = meshlib.spawn([os.path.join(BIN, "qmesh-auditor"), "--topology", t2, "--id", "AUDITOR",
                         "--audit-log", torn, "--drain-ms", "0"], env=meshlib.clean_env(), stderr=subprocess.PIPE,
                        text=True)
    wait_serving("127.0.0.1:%d" % ports["AUDITOR"])
    st = {c.name: c.value for c in unary("127.0.0.1:%d" % ports["AUDITOR"], "/qmesh.v1.Auditor/Stats",
                                                 pb.StatsRequest(), pb.RoleStats).counters}
    R.eq(st.get("audit_log_replayed"), k, name + ": the auditor starts on a torn log and replays the %d intact" % k)
    R.eq(os.path.getsize(torn), off, name + ": the auditor cut the torn tail (file ends at byte %d)" % off)
    R.eq(meshlib.stop(aud), 0, name + ": that auditor exits 0 on SIGTERM")
    p = subprocess.run(verify + [torn], capture_output=True, text=True)
    R.check(p.returncode == 0 and ("%d records" % k) in p.stdout, name + ": the cut log verifies: " + p.stdout)
    # torn inside the 8-byte header
    torn2 = os.path.join(WORK, "torn-header.log")
    shutil.copy(source_log, torn2)
    os.truncate(torn2, off + 5)
    p = subprocess.run(verify + [torn2], capture_output=True, text=True)
    R.check(p.returncode != 0 and ("%d intact records, then an incomplete record of 5 bytes at byte %d" % (k, off))
            in p.stderr, name + ": a tail torn inside a header is reported: " + p.stderr.strip())


source = (None, None)
for n, fn in [("1", scenario_front), ("2", scenario_provider), ("3", scenario_auditor), ("4", scenario_hub_stop),
              ("5", scenario_overload), ("6", scenario_sigterm)]:
    if enabled(n):
        t = time.time()
        r = fn()
        if n == "3":
            source = r
        log("scenario %s done in %.1f s" % (n, time.time() - t))
if enabled("7"):
    t = time.time()
    scenario_tamper(*source)
    log("scenario 7 done in %.1f s" % (time.time() - t))

print("figures: " + json.dumps(FIGURES, sort_keys=True), flush=True)
shutil.rmtree(KEYS, ignore_errors=True)
shutil.rmtree(WORK, ignore_errors=True)
R.finish()
