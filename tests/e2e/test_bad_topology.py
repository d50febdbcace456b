"""test_bad_topology: every bad fixture stops `qmesh validate` and `qmesh demo` with
"file:line:column: message" and a non-zero exit, and leaves no process running; the good
example topologies validate."""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

BIN = meshlib.parse_bin()
QMESH = os.path.join(BIN, "qmesh")
R = meshlib.Results()


def live_roles():
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += os.readlink("/proc/%s/exe" % pid).startswith(os.path.realpath(BIN) + "/qmesh-")
        except OSError:
            pass
    return n


fixtures = sorted(glob.glob(os.path.join(meshlib.ROOT, "tests", "fixtures", "bad", "*.yaml")))
R.check(len(fixtures) >= 10, "at least 10 bad fixtures (%d)" % len(fixtures))
for f in fixtures:
    with open(f, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace")
    m = re.match(r"#\s*expect:\s*(\d+):(\d+):\s*(.*)", first)
    R.check(m is not None, "%s names its expected error" % f)
    if not m:
        continue
    line, col, fragment = m.group(1), m.group(2), m.group(3).strip()
    for args in (["validate", f], ["demo", "--topology", f]):
        p = subprocess.run([QMESH] + args, capture_output=True, text=True, timeout=60, env=meshlib.clean_env())
        R.check(p.returncode != 0, "%s %s exits non-zero" % (args[0], os.path.basename(f)))
        want = "%s:%s:%s: " % (f, line, col)
        R.check(want in p.stderr, "%s %s says %r (got %r)" % (args[0], os.path.basename(f), want, p.stderr.strip()))
        R.check(fragment in p.stderr, "%s %s mentions %r" % (args[0], os.path.basename(f), fragment))
        R.check("Segmentation" not in p.stderr and p.returncode > 0, "no crash")
    R.eq(live_roles(), 0, "no role process after %s" % os.path.basename(f))

for f in [os.path.join(meshlib.ROOT, "deploy", "topology.yaml")] + \
        glob.glob(os.path.join(meshlib.ROOT, "deploy", "examples", "*.yaml")):
    p = subprocess.run([QMESH, "validate", f], capture_output=True, text=True, timeout=60)
    R.eq(p.returncode, 0, "validate %s (%s)" % (f, p.stderr.strip()))

# A missing file and nonsense environment values are errors too, never a crash.
p = subprocess.run([QMESH, "validate", "/nonexistent/topology.yaml"], capture_output=True, text=True)
R.check(p.returncode != 0 and "/nonexistent/topology.yaml" in p.stderr, "missing file named")
for var, val in [("TOTAL_REQUESTS", "abc"), ("QUORUM_THRESHOLD", "7"), ("BYZANTINE_PROVIDER", "PROVIDER_Z"),
                 ("AUDITOR_PORT", "70000"), ("BYZANTINE_AT", "-3")]:
    p = subprocess.run([QMESH, "demo"], capture_output=True, text=True, timeout=60,
                       env=meshlib.clean_env(**{var: val}))
    R.check(p.returncode != 0 and var in p.stderr, "%s=%s refused with the variable named (%r)"
            % (var, val, p.stderr.strip()))
    R.eq(live_roles(), 0, "no role process after %s=%s" % (var, val))
R.finish()
