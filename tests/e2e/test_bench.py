#!/usr/bin/env python3
"""test_bench: `qmesh bench` end to end on a topology of free ports (what it measures, never
how fast: figures belong to the benchmark, not to a test).

1 closed loop with the echo baseline and the wake-up probe: every request decided with every
  vote, the JSON's counts agree with each other, a decision time for every request, the probe
  made as many sleeps as asked, the CPU shares add up to 100%, one row per process;
2 open loop with unary Submit: one call per request, the rate and the generator's lag
  reported; --floor-ms 0 and --echo-ms 0 skip the probe and the echo;
3 the text report names the floor, the CPU shares and "nothing lost";
4 bad options: exit 2 and a message naming the option."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
QMESH = os.path.join(BIN, "qmesh")
text, PORTS = meshlib.topology_yaml(deadline_ms=60000)
TOPO = meshlib.write_topology(text)
ENV = meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C")


def procs_with_topology():
    """pids whose command line names this test's topology file (the bench and its mesh)."""
    return meshlib.processes_with(TOPO)


def bench(*args, timeout=300):
    p = subprocess.run([QMESH, "bench", "--topology", TOPO] + list(args), env=ENV, capture_output=True,
                       text=True, timeout=timeout)
    return p


def check_counts(d, n, what):
    c = d["counts"]
    R.eq(c["sent"], n, what + ": sent")
    R.eq(c["decided"], n, what + ": decided")
    R.eq(c["votes_accepted"], 3 * n, what + ": votes accepted = requests x providers")
    R.eq(c["votes_rejected"] + c["votes_duplicate"] + c["votes_late"], 0, what + ": no bad vote")
    R.eq(c["incomplete"] + c["pending"], 0, what + ": nothing incomplete or pending")
    R.eq(d["nothing_lost"], True, what + ": nothing_lost")
    R.eq(d["mesh"]["decision_latency_ms"]["count"], n, what + ": a decision time per request")
    R.eq(d["mesh"]["decision_times_missing"], 0, what + ": no decision time missing")
    R.eq(len(d["processes"]), 1 + len(meshlib.MESH), what + ": the bench and every role in the table")
    R.eq(sorted(p["role"] for p in d["processes"]),
         sorted(["requester"] + [meshlib.role_of(r) for r in meshlib.MESH]), what + ": roles")
    m = d["machine"]
    total = m["cpu_busy_pct"] + m["cpu_idle_pct"] + m["cpu_steal_pct"]
    R.check(abs(total - 100.0) < 0.5, "%s: busy + idle + steal = 100%% (%r)" % (what, total))
    R.check(all(0 <= m[k] <= 100 for k in ("cpu_busy_pct", "cpu_idle_pct", "cpu_steal_pct")), what + ": shares in range")


# ---- 1. closed loop, echo and floor ----
p = bench("--total", "400", "--concurrency", "32", "--batch", "16", "--echo-ms", "200", "--floor-ms", "100", "--json")
R.eq(p.returncode, 0, "closed loop: exit code (stderr: %s)" % p.stderr[-400:])
d = json.loads(p.stdout) if p.returncode == 0 else None
if d:
    check_counts(d, 400, "closed loop")
    w = d["machine"]["wake_late_ms"]
    R.eq(w["count"], 100, "floor: 100 ms of 1 ms sleeps = 100 samples")
    R.check(0 <= d["machine"]["wake_over_1ms"] <= 100, "floor: sleeps over 1 ms late counted within the samples")
    R.check(w["p50"] <= w["p99"] <= w["max"], "floor: percentiles ordered")
    R.check(d["echo"] is not None and d["echo"]["calls"] > 0 and d["echo"]["failed"] == 0, "echo baseline ran")
R.eq(procs_with_topology(), [], "closed loop: no process left")

# ---- 2. open loop, unary Submit, no floor, no echo ----
p = bench("--total", "600", "--concurrency", "64", "--rate", "600", "--batch", "0", "--echo-ms", "0",
          "--floor-ms", "0", "--json")
R.eq(p.returncode, 0, "open loop: exit code (stderr: %s)" % p.stderr[-400:])
d = json.loads(p.stdout) if p.returncode == 0 else None
if d:
    check_counts(d, 600, "open loop")
    R.eq(d["machine"]["wake_late_ms"], None, "--floor-ms 0 skips the probe")
    R.eq(d["rate"], 600.0, "rate reported")
    R.eq(d["batch"], 0, "unary Submit reported")
    R.eq(d["echo"], None, "--echo-ms 0 skips the echo")
    R.eq(d["mesh"]["rpc_calls"]["requester_front"], 600, "unary: one Front/Submit per request")
    R.check(d["sent_late"] <= 600 and d["lag_max_ms"] >= 0, "generator lag reported")
R.eq(procs_with_topology(), [], "open loop: no process left")

# ---- 3. text report ----
p = bench("--total", "200", "--concurrency", "16", "--echo-ms", "0", "--floor-ms", "20")
R.eq(p.returncode, 0, "text: exit code")
for needle in ("Wake-up floor: a 1000 us sleep", "machine during run    CPUs busy", "taken by the hypervisor (steal)",
               "nothing lost: every request sent was accepted and decided with every vote"):
    R.check(needle in p.stdout, "text report has %r" % needle)
R.eq(procs_with_topology(), [], "text: no process left")

# ---- 4. bad options ----
for args, needle in ((["--floor-ms", "x"], "--floor-ms 'x': expected a whole number"),
                     (["--floor-ms", "600001"], "--floor-ms '600001'"),
                     (["--json=1"], "json")):
    p = bench(*args)
    R.eq(p.returncode, 2, "bad option %r: exit 2" % args)
    R.check(needle in p.stderr, "bad option %r: message names it (%r)" % (args, p.stderr.strip()[:200]))
R.eq(procs_with_topology(), [], "bad options: no process left")
R.finish()
