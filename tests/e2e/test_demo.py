"""test_demo: `qmesh demo` through the real binaries on free loopback ports: exact counts
against an independent computation of the formulas (tests/reference_model.py), the same
counts at concurrency 1 and 64, reconciliation of every hop, a 3-region 5-provider 3-of-5
topology with no code change, and no process left behind."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

BIN = meshlib.parse_bin()
QMESH = os.path.join(BIN, "qmesh")
MODEL = os.path.join(meshlib.ROOT, "tests", "reference_model.py")
R = meshlib.Results()


def demo(topo_path, env, *flags):
    p = subprocess.run([QMESH, "demo", "--topology", topo_path] + list(flags), env=meshlib.clean_env(**env),
                       capture_output=True, text=True, timeout=300)
    return p


def model(**kw):
    args = [sys.executable, MODEL]
    for k, v in kw.items():
        if v is not None:
            args += ["--" + k.replace("_", "-"), str(v)]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def our_processes():
    """Live processes running one of this build's binaries."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % pid)
        except OSError:
            continue
        if exe.startswith(os.path.realpath(BIN) + "/qmesh"):
            out.append((int(pid), exe))
    return out


def compare(name, got, want, nproviders=3):
    R.eq(got["byzantine_at"], want["flip_at"], name + " flip index")
    R.eq(got["byzantine_provider"], want["byzantine"] or "none", name + " byzantine provider")
    R.eq(got["quorum_successes"], want["quorum_successes"], name + " quorum successes")
    R.eq(got["quorum_failures"], want["quorum_failures"], name + " quorum failures")
    R.eq(got["most_inconsistent"], want["most_inconsistent"], name + " most inconsistent")
    provs = {p["id"]: p for p in got["providers"]}
    R.eq(len(provs), nproviders, name + " providers")
    for pid, n in want["initiations"].items():
        R.eq(provs[pid]["initiations"], n, name + " initiations " + pid)
        R.eq(provs[pid]["audited_initiations"], n, name + " audited initiations " + pid)
        R.eq(provs[pid]["initiations_by_domain"], want["initiations_by_domain"][pid], name + " by domain " + pid)
        R.eq(provs[pid]["disagreements"], want["disagreements"][pid], name + " disagreements " + pid)
        R.eq(provs[pid]["votes"], want["votes"][pid], name + " votes " + pid)
    # the reference's order: worst disagreement first, topology order among equals
    order = sorted(want["disagreements"], key=lambda p: want["disagreements"][p] / max(1, want["votes"][p]),
                   reverse=True)
    R.eq([p["id"] for p in got["providers"]], order, name + " suspect order")


def reconcile(name, got, total, nproviders):
    R.eq(got["total_requests"], total, name + " total")
    R.eq(got["decided"], total, name + " decided = requests")
    R.eq(got["incomplete"], 0, name + " incomplete")
    R.eq(got["pending"], 0, name + " pending")
    R.eq(sum(got["hub_relays"].values()), total * nproviders, name + " hub relays = requests x providers")
    R.eq(got["votes_accepted"], total * nproviders, name + " votes accepted")
    for k in ("votes_rejected", "votes_duplicate", "votes_late", "unknown_domain_votes"):
        R.eq(got[k], 0, name + " " + k)
    for p in got["providers"]:
        R.eq(p["evaluated"], total, name + " every provider evaluated every request: " + p["id"])
        R.eq(p["votes"], total, name + " every provider voted once per request: " + p["id"])
    req = got["requester"]
    R.eq((req["sent"], req["accepted"], req["refused"], req["failed"]), (total, total, 0, 0), name + " requester")


text, _ = meshlib.topology_yaml()
topo = meshlib.write_topology(text)

# 1. The run, as text: the reference's lines and numbers.
p = demo(topo, dict(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C", TOTAL_REQUESTS=100))
R.eq(p.returncode, 0, "seed 7 demo exit (stderr: %s)" % p.stderr[-500:])
for line in ["Total requests: 100", "Failover at index: 50 (NUVL_A -> NUVL_B)",
             "Byzantine provider: PROVIDER_C (flip at 75)", "HUB_A relays: 150", "HUB_B relays: 150",
             "PROVIDER_A: 55", "PROVIDER_B: 62", "PROVIDER_C: 55",
             "PROVIDER_B: payments=22, identity=19, storage=21", "Quorum successes: 56", "Quorum failures: 44",
             "PROVIDER_C: disagree=27/100 (27.00%)", "PROVIDER_A: disagree=25/100 (25.00%)",
             "PROVIDER_B: disagree=24/100 (24.00%)", "Most inconsistent provider: PROVIDER_C"]:
    R.check(line + "\n" in p.stdout, "seed 7 text has line %r" % line)
lines = p.stdout.splitlines()
R.check(lines.index("Quorum successes: 56") < lines.index("Most inconsistent provider: PROVIDER_C"),
        "reference lines keep their order")

# 2. Other seeds and sizes against the independent model, as JSON.
cases = [
    ("seed 7 N=100 C", dict(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C", TOTAL_REQUESTS=100),
     dict(seed=7, total=100, byzantine="PROVIDER_C")),
    ("seed 11 N=250 drawn", dict(RANDOM_SEED=11, TOTAL_REQUESTS=250), dict(seed=11, total=250)),
    ("seed 3 N=150 A at 40", dict(RANDOM_SEED=3, TOTAL_REQUESTS=150, BYZANTINE_PROVIDER="PROVIDER_A", BYZANTINE_AT=40),
     dict(seed=3, total=150, byzantine="PROVIDER_A", byzantine_at=40)),
    ("seed 99 N=120 none", dict(RANDOM_SEED=99, TOTAL_REQUESTS=120, BYZANTINE_PROVIDER="none"),
     dict(seed=99, total=120, byzantine="none")),
    ("seed 123456789012 N=90 k=3", dict(RANDOM_SEED=123456789012, TOTAL_REQUESTS=90, QUORUM_THRESHOLD=3,
                                         FAILOVER_AT=10),
     dict(seed=123456789012, total=90, quorum=3, failover_at=10)),
]
for name, env, margs in cases:
    p = demo(topo, env, "--json")
    R.eq(p.returncode, 0, name + " exit (stderr: %s)" % p.stderr[-500:])
    if p.returncode == 0:
        got, want = json.loads(p.stdout), model(**margs)
        if want["byzantine"] is None or want["byzantine"] == "none":
            want["byzantine"] = "none"
        compare(name, got, want)
        reconcile(name, got, margs["total"], 3)
        fo = margs.get("failover_at", max(1, margs["total"] // 2))
        R.eq(got["hub_relays"], {"HUB_A": fo * 3, "HUB_B": (margs["total"] - fo) * 3}, name + " relays per hub")

# 3. Concurrency and batching (Front/SubmitBatch) change timing, never counts.
runs = {}
for c, extra in (("1", ()), ("64", ()), ("64 batch 16", ("--batch", "16")), ("512 batch 256", ("--batch", "256"))):
    p = demo(topo, dict(RANDOM_SEED=5, TOTAL_REQUESTS=400), "--json", "--concurrency", c.split()[0], *extra)
    R.eq(p.returncode, 0, "concurrency %s exit" % c)
    if p.returncode == 0:
        got = json.loads(p.stdout)
        reconcile("concurrency " + c, got, 400, 3)
        for k in ("e2e_seconds", "e2e_rate", "total_time_ms", "requester"):
            got.pop(k, None)
        runs[c] = got
R.eq(len(runs), 4, "every concurrency/batch run finished")
for c in list(runs)[1:]:
    R.eq(runs["1"], runs[c], "concurrency 1 and %s print identical counts" % c)

# 4. Three regions, five providers, 3-of-5: only the topology file changes.
text5, _ = meshlib.topology_yaml(regions=3, providers=5, quorum=3)
topo5 = meshlib.write_topology(text5)
p = demo(topo5, dict(RANDOM_SEED=21, TOTAL_REQUESTS=200), "--json", "--concurrency", "8")
R.eq(p.returncode, 0, "3 regions / 5 providers exit (stderr: %s)" % p.stderr[-500:])
if p.returncode == 0:
    got = json.loads(p.stdout)
    ids = ",".join("PROVIDER_%s" % c for c in "ABCDE")
    want = model(seed=21, total=200, quorum=3, providers=ids, secrets=",".join("%s_KEY" % c for c in "ABCDE"))
    compare("3x5", got, want, nproviders=5)
    reconcile("3x5", got, 200, 5)
    R.eq(got["hub_relays"], {"HUB_A": 500, "HUB_B": 500, "HUB_C": 0}, "3x5 relays per hub")

R.eq(our_processes(), [], "no qmesh process left running")
R.finish()
