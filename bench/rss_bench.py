#!/usr/bin/env python3
"""rss_bench: does the auditor's memory stay flat as requests go by? (a benchmark, not a test)

Starts a mesh (every role its own process on free loopback ports, the auditor with its
audit log), drives TOTAL requests through it with qmesh-requester at high concurrency, and
samples the auditor's resident set (VmRSS from /proc/<pid>/status) as the auditor's decided
count passes 10^3, 10^4, 10^5, 10^6 (up to TOTAL). Prints progress while it runs and a table
at the end. The auditor keeps a fixed pool (65,536 pending + 65,536 decided requests
retained, older decisions forgotten), so its RSS should level off after ~1.3x10^5.

    /usr/bin/python3 bench/rss_bench.py --bin build/bin --total 100000
    /usr/bin/python3 bench/rss_bench.py --bin build/bin --total 1000000 --time-limit 7200

Stops early (and reports the rate reached) after --time-limit seconds."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import meshlib  # noqa: E402

ap = meshlib.arg_parser(default_bin=os.path.join(HERE, "..", "build", "bin"), description=__doc__.splitlines()[0])
ap.add_argument("--total", type=int, default=100000, help="requests to send (10^5 now; up to 10^6)")
ap.add_argument("--concurrency", type=int, default=64)
ap.add_argument("--time-limit", type=float, default=600, help="seconds; 0 = none")
ap.add_argument("--no-log", action="store_true", help="run the auditor without --audit-log")
ap.add_argument("--json", help="also write the results to this file")
A = ap.parse_args()
BIN = os.path.abspath(A.bin)
pb = meshlib.pb()


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def summary(addr):
    return meshlib.unary(addr, "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary, timeout=10)


work = tempfile.mkdtemp(prefix="qmesh-rss-")
keys = os.path.join(work, "keys")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", keys], check=True, capture_output=True)
text, ports = meshlib.topology_yaml(deadline_ms=10000, extra="keys_dir: %s\n" % keys)
topo = meshlib.write_topology(text)
env = meshlib.clean_env(RANDOM_SEED=7, TOTAL_REQUESTS=A.total, BYZANTINE_PROVIDER="PROVIDER_C",
                        BYZANTINE_AT=A.total * 3 // 4)
audit_log = os.path.join(work, "audit.log")
procs = meshlib.start_mesh(BIN, topo, ports, env, audit_log=None if A.no_log else audit_log,
                           stderr=subprocess.DEVNULL)
AUD = "127.0.0.1:%d" % ports["AUDITOR"]
apid = procs["AUDITOR"].pid

checkpoints = [c for c in (10 ** 3, 10 ** 4, 10 ** 5, 10 ** 6) if c <= A.total]
if A.total not in checkpoints:
    checkpoints.append(A.total)
rows = [("idle (before the run)", 0, rss_kib(apid), 0.0, 0.0)]
peak = {rid: rss_kib(p.pid) for rid, p in procs.items()}
print("qmesh rss_bench: %d requests at concurrency %d, auditor pid %d%s; idle VmRSS %d KiB"
      % (A.total, A.concurrency, apid, "" if A.no_log else " (audit log on)", rows[0][2]), flush=True)

t0 = time.time()
req = meshlib.spawn([os.path.join(BIN, "qmesh-requester"), "--topology", topo, "--concurrency", str(A.concurrency)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
out = {}


def reader():
    out["stdout"], out["stderr"] = req.communicate()


th = threading.Thread(target=reader)
th.start()
next_cp, last_print, stopped_early, s = 0, 0.0, False, None
while True:
    time.sleep(0.2)
    try:
        s = summary(AUD)
    except Exception as e:  # noqa: BLE001 -- a slow answer under load: try again
        print("summary: %s" % e, flush=True)
        continue
    now = time.time() - t0
    for rid, p in procs.items():
        peak[rid] = max(peak[rid], rss_kib(p.pid))
    while next_cp < len(checkpoints) and s.decided >= checkpoints[next_cp]:
        rows.append(("%d decided" % checkpoints[next_cp], s.decided, rss_kib(apid), now, s.decided / max(now, 1e-9)))
        print("  checkpoint %8d decided: auditor VmRSS %7d KiB at %.1f s" % (checkpoints[next_cp], rows[-1][2], now),
              flush=True)
        next_cp += 1
    if now - last_print >= 5:
        last_print = now
        print("  %7.1f s: decided %8d / %d (pending %d), %.0f req/s, auditor VmRSS %d KiB"
              % (now, s.decided, A.total, s.pending, s.decided / max(now, 1e-9), rss_kib(apid)), flush=True)
    if req.poll() is not None and s.pending == 0 and (s.decided >= A.total or "stdout" in out):
        break  # all decided, or the requester gave up (its line says why)
    if A.time_limit and now > A.time_limit:
        stopped_early = True
        print("time limit of %.0f s reached at %d decided (%.0f req/s): stopping" % (A.time_limit, s.decided,
                                                                                   s.decided / now), flush=True)
        req.send_signal(signal.SIGKILL)
        break
th.join()
elapsed = time.time() - t0
final = summary(AUD)
rows.append(("end of run", final.decided, rss_kib(apid), elapsed, final.decided / max(elapsed, 1e-9)))
log_bytes = os.path.getsize(audit_log) if os.path.exists(audit_log) else 0
for rid, p in procs.items():
    meshlib.stop(p)
shutil.rmtree(work, ignore_errors=True)

print()
print("requester: %s" % (out.get("stdout") or "").strip())
print("%-24s %10s %14s %10s %10s" % ("when", "decided", "auditor VmRSS", "seconds", "req/s"))
for what, decided, rss, secs, rate in rows:
    print("%-24s %10d %10.1f MiB %10.1f %10.0f" % (what, decided, rss / 1024.0, secs, rate))
print("peak VmRSS by role (MiB): " + ", ".join("%s %.1f" % (rid, kib / 1024.0) for rid, kib in peak.items()))
print("auditor: decided %d, incomplete %d, pending %d, votes accepted %d (want %d), audit log %.1f MiB%s"
      % (final.decided, final.incomplete, final.pending, final.votes_accepted, 3 * final.decided,
         log_bytes / 1048576.0, " -- STOPPED EARLY" if stopped_early else ""))
if A.json:
    with open(A.json, "w") as f:
        json.dump({"total": A.total, "concurrency": A.concurrency, "rows": rows, "peak_kib": peak,
                   "decided": final.decided, "incomplete": final.incomplete, "seconds": elapsed,
                   "audit_log_bytes": log_bytes, "stopped_early": stopped_early}, f, indent=1)
sys.exit(0 if not stopped_early and final.decided == A.total and final.pending == 0 else 1)
