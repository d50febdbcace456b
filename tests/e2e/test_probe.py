"""test_probe: every role driven by a gRPC client this project did not write.

The client is Debian's python3-grpcio; the only protos compiled (by python3-grpc-tools, at test
time) are the public ones from the grpc-proto package: grpc.reflection.v1, v1alpha and
grpc.health.v1. Everything about qmesh.v1 comes from the servers' own reflection (probe.py builds
a private descriptor pool from the FileDescriptorProto bytes they return); proto/ is never read.

Against a real `qmesh up` on free ports, for every role:
  reflection v1 and v1alpha list the same services (health, both reflections, the role's one
  qmesh service); every method's input and output types resolve and yield message classes;
  file_by_filename("qmesh/v1/qmesh.proto") answers and an unknown file / symbol gives a NOT_FOUND
  error response on a stream that keeps answering; Health Check for "" and every served service
  is SERVING, an unknown service NOT_FOUND, Watch of an unknown service SERVICE_UNKNOWN; Stats
  answers id, role, listen, counters and holds no score secret and no PEM text; an unknown method
  is UNIMPLEMENTED and a malformed message INVALID_ARGUMENT with a message, the server serving
  after each.
Through the mesh: Front/Submit with a JSON payload and -H style metadata, then
Auditor/Lookup(sha256(payload)) is "decided" with 3 verified votes and Summary counts it.
Each role kind alone with --drain-ms 500: Watch streams SERVING, then NOT_SERVING after SIGTERM
while the process still runs; it exits 0.
probe.py's command line (list, describe, call -H, errors) is checked on the same mesh, and its
streaming Watch on a role that drains."""
import base64
import glob
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

import grpc

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402
import probe  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")

health = probe.public_pb2("health_v1")
SERVING = health.HealthCheckResponse.SERVING
NOT_SERVING = health.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health.HealthCheckResponse.SERVICE_UNKNOWN

ROLE_OF = {"NUVL": ("front", "Front"), "HUB": ("hub", "Hub"), "PROVIDER": ("provider", "Provider"),
           "AUDITOR": ("auditor", "Auditor")}
# The methods each role must have (reflection may show more: the wire grows).
METHODS = {"Front": ["Submit", "SubmitBatch", "Stats"], "Hub": ["Relay", "Stats"], "Provider": ["Evaluate", "Stats"],
           "Auditor": ["Report", "Summary", "Lookup", "Stats"]}
UNARY = {}  # rid -> the unary methods of its own qmesh service, as reflection describes them
COMMON = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection"]


def role_of(rid):
    return ROLE_OF[rid.split("_")[0]]


def health_check(addr, service="", timeout=5):
    """(status, None) or (None, RpcError code) from grpc.health.v1.Health/Check."""
    with grpc.insecure_channel(addr) as ch:
        fn = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=health.HealthCheckResponse.FromString)
        try:
            return fn(health.HealthCheckRequest(service=service), timeout=timeout).status, None
        except grpc.RpcError as e:
            return None, e.code()


def still_serving(addr, what):
    R.eq(health_check(addr), (SERVING, None), "%s: still SERVING after %s" % (addr, what))


def raw_call(addr, path, body, metadata=None):
    """A unary call with raw bytes: (reply bytes, None) or (None, (code, details))."""
    with grpc.insecure_channel(addr) as ch:
        try:
            return ch.unary_unary(path)(body, metadata=metadata, timeout=10), None
        except grpc.RpcError as e:
            return None, (e.code(), e.details())


def counters(stats_json):
    return {c["name"]: int(c.get("value", "0")) for c in json.loads(stats_json).get("counters", [])}


# ---------------------------------------------------------------------------------------------
# The mesh: `qmesh up` on free ports, with secrets and keys this test knows so it can look for
# them in every answer.
keys = tempfile.mkdtemp(prefix="qmesh-probe-keys-")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", keys], check=True, capture_output=True)
SECRETS = {"PROVIDER_%s" % c: "probe_secret_%s_%s" % (c, secrets.token_hex(8)) for c in "ABC"}
text, ports = meshlib.topology_yaml(secrets=SECRETS, extra="keys_dir: %s\n" % keys)
topo = meshlib.write_topology(text)
PEM_LINES = set()
for kf in glob.glob(os.path.join(keys, "*")):
    with open(kf, errors="replace") as f:
        for line in f:
            line = line.strip()
            if len(line) >= 16 and not line.startswith("-----"):
                PEM_LINES.add(line)
R.check(len(PEM_LINES) >= 3, "qmesh keygen wrote PEM keys to look for (%d body lines)" % len(PEM_LINES))

logdir = tempfile.mkdtemp(prefix="qmesh-probe-up-")
up_out = open(os.path.join(logdir, "stdout"), "w+")
up_err = open(os.path.join(logdir, "stderr"), "w+")
up = meshlib.spawn([os.path.join(BIN, "qmesh"), "up", "--topology", topo],
                   env=meshlib.clean_env(BYZANTINE_PROVIDER="none"), stdout=up_out, stderr=up_err)
ADDR = {rid: "127.0.0.1:%d" % port for rid, port in ports.items()}
try:
    for rid, addr in ADDR.items():
        meshlib.wait_serving(addr)
except AssertionError:
    up_err.seek(0)
    print(up_err.read())
    raise
# qmesh up prints its table once its own readiness checks passed, which may be a little
# after the roles answer us: wait for the table.
deadline = time.time() + 30
while True:
    up_out.seek(0)
    CHILD_PIDS = [int(line.split()[-1]) for line in up_out.read().splitlines() if " pid " in line]
    if len(CHILD_PIDS) >= len(ADDR) or time.time() > deadline:
        break
    time.sleep(0.05)
R.eq(len(CHILD_PIDS), len(ADDR), "qmesh up started one process per role")

# ---- reflection: services, every method's types, files, errors ----
for rid, addr in sorted(ADDR.items()):
    role, svc = role_of(rid)
    own = "qmesh.v1." + svc
    with probe.Probe(addr, "v1") as p1, probe.Probe(addr, "v1alpha") as pa:
        services = p1.list_services()
        R.eq(sorted(services), sorted(COMMON + [own]), "%s: v1 list_services" % rid)
        R.eq(sorted(pa.list_services()), sorted(services), "%s: v1alpha lists the same services" % rid)
        for s in services:
            for p, ver in ((p1, "v1"), (pa, "v1alpha")):
                try:
                    sd = p.find(s)
                except (probe.ReflectionError, KeyError) as e:
                    R.check(False, "%s: %s resolves %s: %s" % (rid, ver, s, e))
                    continue
                R.eq(sd.full_name, s, "%s: %s file_containing_symbol(%s)" % (rid, ver, s))
                R.check(len(sd.methods) > 0, "%s: %s has methods" % (rid, s))
                for m in sd.methods:
                    for t in (m.input_type, m.output_type):
                        try:
                            cls = probe.message_class(p.find(t.full_name))
                            ok = cls.DESCRIPTOR.full_name == t.full_name and cls().ByteSize() == 0
                        except Exception as e:  # noqa: BLE001
                            ok = False
                            print("%s: %s: %r" % (rid, t.full_name, e))
                        R.check(ok, "%s: %s %s.%s type %s resolves to a message class"
                                % (rid, ver, s, m.name, t.full_name))
        own_sd = p1.find(own)
        names = [m.name for m in own_sd.methods]
        R.check(set(METHODS[svc]) <= set(names), "%s: %s has %s (reflection: %s)" % (rid, own, METHODS[svc], names))
        for m in METHODS[svc]:
            md = own_sd.methods_by_name.get(m)
            R.check(md is not None and not md.client_streaming and not md.server_streaming,
                    "%s: %s.%s is unary" % (rid, own, m))
        UNARY[rid] = [m.name for m in own_sd.methods if not m.client_streaming and not m.server_streaming]
        watch = p1.method("grpc.health.v1.Health/Watch")
        R.check(watch.server_streaming and not watch.client_streaming, "%s: Health.Watch is a server stream" % rid)

        for p, ver in ((p1, "v1"), (pa, "v1alpha")):
            fds = p.file_by_filename("qmesh/v1/qmesh.proto")
            R.check(fds and fds[0].name == "qmesh/v1/qmesh.proto" and fds[0].package == "qmesh.v1"
                    and svc in [s.name for s in fds[0].service],
                    "%s: %s file_by_filename(qmesh/v1/qmesh.proto) names the file, its package and %s"
                    % (rid, ver, svc))
            # Errors come back as ErrorResponse on a stream that goes on answering.
            resp = p.reflect([{"file_containing_symbol": "qmesh.v1.NoSuchThing"},
                              {"file_by_filename": "qmesh/v1/nope.proto"},
                              {"list_services": ""},
                              {"file_containing_symbol": own}])
            kinds = [r.WhichOneof("message_response") for r in resp]
            R.eq(kinds, ["error_response", "error_response", "list_services_response", "file_descriptor_response"],
                 "%s: %s answers errors and then goes on on one stream" % (rid, ver))
            if len(resp) == 4:
                for r, what in ((resp[0], "unknown symbol"), (resp[1], "unknown file")):
                    R.eq(r.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0],
                         "%s: %s %s is NOT_FOUND" % (rid, ver, what))
                    R.check(r.error_response.error_message != "", "%s: %s %s has a message" % (rid, ver, what))
                R.eq(resp[0].original_request.file_containing_symbol, "qmesh.v1.NoSuchThing",
                     "%s: %s error echoes the request" % (rid, ver))
        # A reflection request that is not a ServerReflectionRequest fails that stream only.
        err = None
        try:
            with grpc.insecure_channel(addr) as ch:
                list(ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")(
                    iter([b"\x0a\x05ab"]), timeout=10))
        except grpc.RpcError as e:
            err = e
        R.check(err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details(),
                "%s: a malformed reflection request is INVALID_ARGUMENT with a message (%s)"
                % (rid, err and (err.code(), err.details())))
        R.eq(sorted(p1.list_services()), sorted(services), "%s: reflection answers after that" % rid)

# ---- health ----
for rid, addr in sorted(ADDR.items()):
    own = "qmesh.v1." + role_of(rid)[1]
    for s in [""] + COMMON + [own]:
        R.eq(health_check(addr, s), (SERVING, None), "%s: Health/Check(%r)" % (rid, s))
    R.eq(health_check(addr, "qmesh.v1.NoSuchService"), (None, grpc.StatusCode.NOT_FOUND),
         "%s: Health/Check of an unknown service" % rid)
    other = "qmesh.v1.Auditor" if "Auditor" not in own else "qmesh.v1.Front"
    R.eq(health_check(addr, other), (None, grpc.StatusCode.NOT_FOUND),
         "%s: Health/Check(%s), a service it does not serve" % (rid, other))
    still_serving(addr, "NOT_FOUND")
    with grpc.insecure_channel(addr) as ch:
        w = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=health.HealthCheckResponse.FromString)
        for s, want in (("", SERVING), (own, SERVING), ("qmesh.v1.NoSuchService", SERVICE_UNKNOWN)):
            it = w(health.HealthCheckRequest(service=s), timeout=10)
            try:
                got = next(it).status
            except grpc.RpcError as e:
                got = e.code()
            it.cancel()
            R.eq(got, want, "%s: Health/Watch(%r) first status" % (rid, s))
    # The same calls, described and made through reflection alone.
    with probe.Probe(addr) as p:
        R.eq(json.loads(p.call("grpc.health.v1.Health/Check", '{"service": "%s"}' % own)), {"status": "SERVING"},
             "%s: Health/Check through reflection-built classes" % rid)

# ---- Stats: who answers, and never a key ----
for rid, addr in sorted(ADDR.items()):
    role, svc = role_of(rid)
    with probe.Probe(addr) as p:
        out = p.call("qmesh.v1.%s/Stats" % svc, "{}", emit_defaults=True)
    st = json.loads(out)
    R.eq(st.get("id"), rid, "%s: Stats id" % rid)
    R.eq(st.get("role"), role, "%s: Stats role" % rid)
    R.eq(st.get("listen"), addr, "%s: Stats listen" % rid)
    if role in ("front", "hub"):
        R.eq(st.get("region"), rid[-1].lower(), "%s: Stats region" % rid)
    R.check(int(st.get("pid", 0)) in CHILD_PIDS, "%s: Stats pid is one of qmesh up's children" % rid)
    c = counters(out)
    R.check({"rpc_calls", "rpc_unimplemented", "rpc_failed"} <= set(c) and c["rpc_calls"] > 0,
            "%s: Stats counters include the server's own (%s)" % (rid, sorted(c)))
    R.check(len(c) > 4, "%s: Stats has role counters too" % rid)
    leaked = [s for s in SECRETS.values() if s in out or s.encode() in out.encode()]
    leaked += [line for line in PEM_LINES if line in out]
    leaked += [w for w in ("-----BEGIN", "PRIVATE KEY", "PUBLIC KEY") if w in out]
    R.eq(leaked, [], "%s: Stats holds no score secret and no PEM text" % rid)

# ---- through the mesh: Submit at each front, Lookup and Summary at the auditor ----
AUD = ADDR["AUDITOR"]
with probe.Probe(AUD) as pa:
    before = json.loads(pa.call("qmesh.v1.Auditor/Summary"))
    seq0 = 700000 + secrets.randbelow(100000)
    for k, front in enumerate(("NUVL_A", "NUVL_B")):
        payload = b'{"probe":%d,"nonce":"%s"}' % (k, secrets.token_hex(8).encode())
        seq = seq0 + k
        md = [("x-verification-context", "CTX_ALPHA"), ("x-domain", "identity"), ("x-request-seq", str(seq))]
        with probe.Probe(ADDR[front]) as pf:
            body = json.dumps({"payload": base64.b64encode(payload).decode()})
            reply = pf.call("qmesh.v1.Front/Submit", body, metadata=md)
        R.eq(json.loads(reply), {}, "%s: Submit answers the constant empty reply" % front)
        repr_hex = hashlib.sha256(payload).hexdigest()
        look, deadline = None, time.time() + 15
        while time.time() < deadline:
            try:
                look = json.loads(pa.call("qmesh.v1.Auditor/Lookup", json.dumps({"request_repr_hex": repr_hex})))
                if look.get("state") == "decided":
                    break
            except grpc.RpcError as e:
                look = {"error": str(e.code())}
            time.sleep(0.05)
        R.eq(look.get("state"), "decided", "%s: Lookup(sha256(payload)) state (%s)" % (front, look))
        votes = look.get("votes", [])
        R.eq(sorted(v["providerId"] for v in votes), ["PROVIDER_A", "PROVIDER_B", "PROVIDER_C"],
             "%s: 3 votes, one per provider" % front)
        R.check(all(v.get("verified") for v in votes), "%s: every vote verified" % front)
        R.eq(look.get("requestReprHex"), repr_hex, "%s: Lookup echoes the request hash" % front)
        R.eq(look.get("sequence"), str(seq), "%s: x-request-seq reached the auditor" % front)
        R.eq(look.get("domain"), "identity", "%s: x-domain reached the auditor" % front)
        yes = sum(1 for v in votes if v.get("initiated"))
        R.eq(look.get("initiatedVotes", 0), yes, "%s: initiated_votes counts the votes" % front)
        R.eq(bool(look.get("quorumSuccess")), yes >= 2, "%s: quorum_success is 2-of-3" % front)
    after, deadline = None, time.time() + 10
    while time.time() < deadline:
        after = json.loads(pa.call("qmesh.v1.Auditor/Summary"))
        if int(after.get("decided", 0)) >= int(before.get("decided", 0)) + 2:
            break
        time.sleep(0.05)
    R.eq(int(after.get("decided", 0)) - int(before.get("decided", 0)), 2, "Summary counts both requests decided")
    R.eq(int(after.get("votesAccepted", 0)) - int(before.get("votesAccepted", 0)), 6, "Summary counts 6 votes")
    R.eq(int(after.get("quorumSuccesses", 0)) + int(after.get("quorumFailures", 0)), int(after.get("decided", 0)),
         "Summary: successes + failures = decided")
    R.eq(after.get("providers"), 3, "Summary: 3 providers")
    R.eq(after.get("quorumThreshold"), 2, "Summary: quorum threshold 2")
    # A bad Lookup is an error with a message, and the auditor goes on.
    try:
        pa.call("qmesh.v1.Auditor/Lookup", '{"request_repr_hex": "zz"}')
        R.check(False, "Lookup('zz') fails")
    except grpc.RpcError as e:
        R.check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details(),
                "Lookup('zz') is INVALID_ARGUMENT with a message (%s %r)" % (e.code(), e.details()))
    try:
        pa.call("qmesh.v1.Auditor/Lookup", json.dumps({"request_repr_hex": "00" * 32}))
        R.check(False, "Lookup of an unseen request fails")
    except grpc.RpcError as e:
        R.eq(e.code(), grpc.StatusCode.NOT_FOUND, "Lookup of an unseen request")
    still_serving(AUD, "bad Lookups")

# ---- unknown methods and malformed messages, every role ----
BAD = b"\x0a\x05ab"  # field 1, length 5, 2 bytes: not a protobuf message of any type
for rid, addr in sorted(ADDR.items()):
    svc = role_of(rid)[1]
    with probe.Probe(addr) as p:
        unimpl0 = counters(p.call("qmesh.v1.%s/Stats" % svc)).get("rpc_unimplemented", 0)
    for path in ("/qmesh.v1.%s/NoSuchMethod" % svc, "/qmesh.v1.NoSuchService/Stats", "/grpc.health.v1.Health/Nope"):
        _, err = raw_call(addr, path, b"")
        R.eq(err and err[0], grpc.StatusCode.UNIMPLEMENTED, "%s: %s" % (rid, path))
        still_serving(addr, path)
    with probe.Probe(addr) as p:
        unimpl1 = counters(p.call("qmesh.v1.%s/Stats" % svc)).get("rpc_unimplemented", 0)
    R.eq(unimpl1 - unimpl0, 3, "%s: Stats counts the 3 unknown-method calls" % rid)
    for m in UNARY[rid] + ["../grpc.health.v1.Health/Check"]:
        path = "/qmesh.v1.%s/%s" % (svc, m) if not m.startswith("..") else m[2:]
        _, err = raw_call(addr, path, BAD)
        R.check(err is not None and err[0] == grpc.StatusCode.INVALID_ARGUMENT and err[1],
                "%s: malformed message to %s is INVALID_ARGUMENT with a message (%s)" % (rid, path, err))
        still_serving(addr, "malformed " + path)
    if svc == "Front":
        _, err = raw_call(addr, "/qmesh.v1.Front/Submit", b"\x0a\x01x", metadata=[("x-request-seq", "not-a-number")])
        R.check(err is not None and err[0] == grpc.StatusCode.INVALID_ARGUMENT and "x-request-seq" in err[1],
                "%s: a bad x-request-seq is INVALID_ARGUMENT naming it (%s)" % (rid, err))
        still_serving(addr, "bad metadata")

# ---- probe.py as a command ----
F = ADDR["NUVL_A"]


def cli(*args):
    return subprocess.run([sys.executable, PROBE] + list(args), capture_output=True, text=True, timeout=60)


r = cli(F, "list")
R.eq(r.stdout.split(), sorted(COMMON + ["qmesh.v1.Front"]), "probe.py list")
r = cli(F, "list", "qmesh.v1.Front")
R.eq(r.stdout.split(), ["qmesh.v1.Front.Submit", "qmesh.v1.Front.SubmitBatch", "qmesh.v1.Front.Stats"], "probe.py list qmesh.v1.Front")
r = cli(F, "describe", "qmesh.v1.Front")
R.check(r.returncode == 0 and "rpc Submit ( .qmesh.v1.SubmitRequest ) returns ( .qmesh.v1.SubmitReply );" in r.stdout,
        "probe.py describe qmesh.v1.Front: %r" % r.stdout)
r = cli(F, "describe", "qmesh.v1.SubmitRequest")
R.check(r.returncode == 0 and "bytes payload = 1;" in r.stdout, "probe.py describe qmesh.v1.SubmitRequest: %r" % r.stdout)
payload = b'{"cli":"%s"}' % secrets.token_hex(8).encode()
r = cli(F, "call", "qmesh.v1.Front/Submit", '{"payload":"%s"}' % base64.b64encode(payload).decode(),
        "-H", "x-verification-context: CTX_ALPHA", "-H", "x-domain: storage", "-H", "x-request-seq: 5")
R.check(r.returncode == 0 and json.loads(r.stdout) == {}, "probe.py call Submit: %r %r" % (r.stdout, r.stderr))
deadline, state = time.time() + 15, None
while time.time() < deadline and state != "decided":
    r = cli(AUD, "call", "qmesh.v1.Auditor/Lookup", '{"request_repr_hex":"%s"}' % hashlib.sha256(payload).hexdigest())
    state = json.loads(r.stdout).get("state") if r.returncode == 0 else None
    time.sleep(0.1)
R.eq(state, "decided", "probe.py call Lookup finds the CLI's request decided")
r = cli(AUD, "call", "qmesh.v1.Auditor/Lookup", '{"request_repr_hex":"zz"}')
R.check(r.returncode == 64 + 3 and "Code: InvalidArgument" in r.stderr, "probe.py prints a grpcurl-style error: %r" % r.stderr)
r = cli(F, "describe", "qmesh.v1.NoSuch")
R.check(r.returncode != 0 and "NOT_FOUND" in r.stderr, "probe.py describe of an unknown symbol fails: %r" % r.stderr)
r = cli(F, "--v1alpha", "list")
R.eq(r.stdout.split(), sorted(COMMON + ["qmesh.v1.Front"]), "probe.py --v1alpha list")

# ---- the mesh stops cleanly ----
R.eq(meshlib.stop(up, timeout=30), 0, "qmesh up exits 0 on SIGTERM")
time.sleep(0.2)
left = [pid for pid in CHILD_PIDS if os.path.exists("/proc/%d" % pid)
        and open("/proc/%d/stat" % pid).read().split()[2] != "Z"]
R.eq(left, [], "no role process of qmesh up is left")

# ---- Watch through a drain: each role kind alone, --drain-ms 500 ----
text2, ports2 = meshlib.topology_yaml(extra="keys_dir: %s\n" % keys)
topo2 = meshlib.write_topology(text2)
for rid in ("NUVL_A", "HUB_A", "PROVIDER_A", "AUDITOR"):
    role, svc = role_of(rid)
    addr = "127.0.0.1:%d" % ports2[rid]
    proc = meshlib.spawn([os.path.join(BIN, "qmesh-" + role), "--topology", topo2, "--id", rid, "--drain-ms", "500"],
                         env=meshlib.clean_env(), stderr=subprocess.DEVNULL)
    meshlib.wait_serving(addr)
    seen, running_at_not_serving, check_during_drain, end = [], None, None, None
    with grpc.insecure_channel(addr) as ch:
        w = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=health.HealthCheckResponse.FromString)
        it = w(health.HealthCheckRequest(service=""), timeout=20)
        try:
            seen.append(next(it).status)
            proc.send_signal(signal.SIGTERM)
            for m in it:
                seen.append(m.status)
                if m.status == NOT_SERVING and running_at_not_serving is None:
                    running_at_not_serving = proc.poll() is None
                    check_during_drain = health_check(addr, timeout=2)
            end = grpc.StatusCode.OK
        except grpc.RpcError as e:
            end = e.code()
    R.eq(seen, [SERVING, NOT_SERVING], "%s alone: Watch streams SERVING then NOT_SERVING on SIGTERM" % rid)
    R.eq(end, grpc.StatusCode.OK, "%s alone: Watch ends OK when the role drains" % rid)
    R.eq(running_at_not_serving, True, "%s alone: NOT_SERVING arrives while the process still runs" % rid)
    R.eq(check_during_drain, (NOT_SERVING, None), "%s alone: Check during the drain is NOT_SERVING" % rid)
    R.eq(meshlib.stop(proc, timeout=15), 0, "%s alone: exits 0 after the drain" % rid)

# The same through probe.py's command line: a Watch printed as it streams.
addr = "127.0.0.1:%d" % ports2["PROVIDER_B"]
proc = meshlib.spawn([os.path.join(BIN, "qmesh-provider"), "--topology", topo2, "--id", "PROVIDER_B", "--drain-ms", "500"],
                     env=meshlib.clean_env(), stderr=subprocess.DEVNULL)
meshlib.wait_serving(addr)
watcher = meshlib.spawn([sys.executable, PROBE, addr, "call", "grpc.health.v1.Health/Watch", "{}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
first = ""
for line in watcher.stdout:
    first += line
    if line.startswith("}"):
        break
R.eq(json.loads(first or "null"), {"status": "SERVING"}, "probe.py Watch prints SERVING as it arrives")
proc.send_signal(signal.SIGTERM)
try:
    rest, err = watcher.communicate(timeout=20)
except subprocess.TimeoutExpired:
    watcher.kill()
    rest, err = watcher.communicate()
R.eq((watcher.returncode, json.loads(rest or "null")), (0, {"status": "NOT_SERVING"}),
     "probe.py Watch prints NOT_SERVING on SIGTERM and ends OK (%r)" % err)
R.eq(meshlib.stop(proc, timeout=15), 0, "PROVIDER_B alone: exits 0 after the drain")

R.finish()
