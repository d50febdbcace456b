"""test_invariants: DESIGN.md's invariants, each checked so that breaking it fails here.
1 fronts and hubs link no signing or verifying code (their symbols);
2 a front's answer is the same constant for every accepted request;
3 a hub delivers byte-identical Artifacts to every provider (fake providers capture them);
4 only providers decide: a flipped bit or a wrong key is rejected and counted by the auditor;
5 the auditor opens no outbound connection and serves only read calls besides Report."""
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent import futures

import grpc
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
pb = meshlib.pb()

# ---- 1: symbols ----
AUTHORITY = ["qm_sign", "qm_verify", "qm_key_load_private", "qm_key_load_public", "qm_decision_score",
             "EVP_DigestSign", "EVP_DigestVerify", "EVP_PKEY", "PEM_read", "HMAC", "EVP_MAC", "crypto_sign",
             "sodium_"]


def symbols(binary):
    out = subprocess.run(["nm", "-a", binary], capture_output=True, text=True).stdout
    out += subprocess.run(["nm", "-D", binary], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()}


for role in ("front", "hub"):
    syms = symbols(os.path.join(BIN, "qmesh-" + role))
    R.check(len(syms) > 100, "qmesh-%s has a symbol table" % role)
    bad = sorted(s for s in syms if any(s.startswith(a) or s == a for a in AUTHORITY))
    R.eq(bad, [], "qmesh-%s links no signing/verifying/deciding code" % role)
prov = symbols(os.path.join(BIN, "qmesh-provider"))
R.check("qm_sign" in prov and "qm_decision_score" in prov and "crypto_sign_detached" in prov,
        "the check can fail: the provider has qm_sign and libsodium's signer")
aud = symbols(os.path.join(BIN, "qmesh-auditor"))
R.check("qm_verify" in aud and "qm_decision_score" not in aud, "the auditor verifies and never decides")

# ---- a mesh with keys we hold, so the test can sign as a provider ----
keys = tempfile.mkdtemp(prefix="qmesh-keys-")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", keys], check=True, capture_output=True)
text, ports = meshlib.topology_yaml(extra="keys_dir: %s\n" % keys)
topo = meshlib.write_topology(text)
env = meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C", BYZANTINE_AT=0)
AUD_METRICS = meshlib.free_ports(1)[0]
procs = meshlib.start_mesh(BIN, topo, ports, env, rids=["AUDITOR"] + meshlib.PROVIDERS + ["HUB_A", "NUVL_A"],
                           extra={"AUDITOR": ["--metrics-addr", "127.0.0.1:%d" % AUD_METRICS]}, stderr=subprocess.DEVNULL)
AUD = "127.0.0.1:%d" % ports["AUDITOR"]
FRONT = "127.0.0.1:%d" % ports["NUVL_A"]

# ---- 2: the front's answer is constant ----
replies = set()
with grpc.insecure_channel(FRONT) as ch:
    submit = ch.unary_unary("/qmesh.v1.Front/Submit")
    for i in range(60):
        req = pb.SubmitRequest(payload=b'{"i":%d}' % i).SerializeToString()
        md = [("x-verification-context", "CTX_ALPHA" if i % 3 else "SPOOF"),
              ("x-domain", ["payments", "identity", "storage"][i % 3]), ("x-request-seq", str(i))]
        replies.add(submit(req, metadata=md, timeout=10))
R.eq(replies, {b""}, "one constant front reply over 60 requests of both outcomes")
summary = meshlib.unary(AUD, "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary)
R.check(summary.quorum_successes > 0 and summary.quorum_failures > 0,
        "the 60 requests had both outcomes (%d/%d)" % (summary.quorum_successes, summary.quorum_failures))

# ---- 4: the auditor takes only what a provider's key signed ----
def private_key(pid):
    with open(os.path.join(keys, pid + ".key"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def report(outcome_bytes, signer, key_id):
    so = pb.SignedOutcome(outcome=outcome_bytes, signature=private_key(signer).sign(outcome_bytes), key_id=key_id)
    return so


def send(so):
    try:
        r = meshlib.unary(AUD, "/qmesh.v1.Auditor/Report", so, pb.ReportReply)
        return "OK", r.result
    except grpc.RpcError as e:
        return e.code().name, e.details()


def rejected():
    s = meshlib.unary(AUD, "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary)
    return s.votes_rejected, {c.name: c.value for c in s.rejected_by_reason}


repr_ = hashlib.sha256(b"invariant-4").digest()
good = pb.Outcome(request_repr=repr_, provider_id="PROVIDER_A", domain="storage", initiated=True,
                  sequence=1000, decided_unix_nanos=1).SerializeToString()
base, _ = rejected()
flipped = bytearray(good)
flipped[-3] ^= 0x01
code, detail = send(pb.SignedOutcome(outcome=bytes(flipped), signature=private_key("PROVIDER_A").sign(good),
                                     key_id="PROVIDER_A"))
R.eq(code, "UNAUTHENTICATED", "one flipped bit in the Outcome is rejected (%s)" % detail)
code, detail = send(report(good, "PROVIDER_B", "PROVIDER_A"))
R.eq(code, "UNAUTHENTICATED", "an Outcome signed by the wrong key is rejected (%s)" % detail)
code, detail = send(report(good, "PROVIDER_B", "PROVIDER_B"))
R.eq(code, "PERMISSION_DENIED", "B cannot report A's outcome, even signed by B (%s)" % detail)
code, detail = send(report(good, "PROVIDER_A", "PROVIDER_Z"))
R.eq(code, "UNAUTHENTICATED", "an unknown signer is rejected (%s)" % detail)
sig = private_key("PROVIDER_A").sign(good)
code, _ = send(pb.SignedOutcome(outcome=good, signature=sig[:-1] + bytes([sig[-1] ^ 1]), key_id="PROVIDER_A"))
R.eq(code, "UNAUTHENTICATED", "a forged signature is rejected")
total, reasons = rejected()
R.eq(total - base, 5, "each rejection is counted")
R.eq((reasons.get("bad_signature"), reasons.get("signer_mismatch"), reasons.get("unknown_signer")), (3, 1, 1),
     "rejections counted by reason")
R.eq(send(report(good, "PROVIDER_A", "PROVIDER_A")), ("OK", pb.ReportReply.ACCEPTED), "the genuine vote is taken")
R.eq(send(report(good, "PROVIDER_A", "PROVIDER_A")), ("OK", pb.ReportReply.DUPLICATE), "a replay is a duplicate")
lk = meshlib.unary(AUD, "/qmesh.v1.Auditor/Lookup", pb.LookupRequest(request_repr_hex=repr_.hex()), pb.LookupReply)
R.eq([(v.provider_id, v.initiated, v.verified) for v in lk.votes], [("PROVIDER_A", True, True)],
     "only the genuine vote is recorded")

# ---- 5: the auditor opens no outbound connection; its calls are reads besides Report ----
def tcp_sockets(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    socks = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    socks.append((int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)))
    return socks


# The auditor's /metrics side is a gRPC client of the auditor itself (Stats, Summary over
# loopback): scrape once so that connection exists, then allow exactly that.
with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % AUD_METRICS, timeout=10) as r:
    R.eq(r.status, 200, "the auditor serves /metrics")
socks = tcp_sockets(procs["AUDITOR"].pid)
own = {ports["AUDITOR"], AUD_METRICS}
R.check(len(socks) >= 2, "the auditor has its listener and accepted connections (%r)" % socks)
R.eq(sorted((local, remote) for local, remote in socks if local not in own and remote != ports["AUDITOR"]), [],
     "every auditor socket is on its own ports or dials its own gRPC port: no outbound connection")
R.check(any(local not in own and remote == ports["AUDITOR"] for local, remote in socks),
        "the check sees the /metrics side's loopback connection to the auditor itself")
prov_socks = tcp_sockets(procs["PROVIDER_A"].pid)
R.check(any(local != ports["PROVIDER_A"] and remote != ports["PROVIDER_A"] for local, remote in prov_socks),
        "the check can fail: a provider dials out")
# Mux carries these same methods as frames on one stream, and nothing else (e2e_hostile:
# a frame naming any other method is UNIMPLEMENTED).
R.eq(sorted(meshlib.reflected_methods(AUD, "qmesh.v1.Auditor")),
     ["DecisionTimes", "DriftTrace", "Lookup", "Mux", "Report", "ReportBatch", "Stats", "Summary"],
     "the auditor's service has only Report, reads, and Mux to carry them")

# ---- 3: a hub relays byte-identical bytes (fake providers record what arrives) ----
captured = {}


def fake_provider(pid):
    def handler(request, context):
        captured.setdefault(pid, []).append(request)
        return b""

    def batch_handler(request, context):
        captured.setdefault(pid + "/batch", []).append(request)
        n = len(pb.ArtifactBatch.FromString(request).artifacts)
        return pb.BatchReply(items=[pb.ItemStatus() for _ in range(n)]).SerializeToString()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc = grpc.unary_unary_rpc_method_handler(handler)  # raw bytes in, raw bytes out
    rpcn = grpc.unary_unary_rpc_method_handler(batch_handler)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "qmesh.v1.Provider", {"Evaluate": rpc, "EvaluateBatch": rpcn})])
    return server


fport = meshlib.free_ports(4)
fakes = []
fake_ports = meshlib.free_ports(3)
for pid, port in zip(["PROVIDER_A", "PROVIDER_B", "PROVIDER_C"], fake_ports):
    s = fake_provider(pid)
    s.add_insecure_port("127.0.0.1:%d" % port)
    s.start()
    fakes.append(s)
ftext, _ = meshlib.topology_yaml(ports={"NUVL_A": fport[0], "HUB_A": fport[1], "NUVL_B": fport[2], "HUB_B": fport[3],
                                        "PROVIDER_A": fake_ports[0], "PROVIDER_B": fake_ports[1],
                                        "PROVIDER_C": fake_ports[2], "AUDITOR": meshlib.free_ports(1)[0]})
ftopo = meshlib.write_topology(ftext)
hub = meshlib.spawn([os.path.join(BIN, "qmesh-hub"), "--topology", ftopo, "--id", "HUB_A", "--drain-ms", "0"],
                    env=meshlib.clean_env(), stderr=subprocess.DEVNULL)
meshlib.wait_serving("127.0.0.1:%d" % fport[1])
artifact = pb.Artifact(request_repr=hashlib.sha256(b"bytes").digest(), verification_context="CTX_ALPHA",
                       domain="identity", sequence=42, front_id="NUVL_A", accepted_unix_nanos=123).SerializeToString()
# an unknown field (99, varint 7) a re-encoding hub would reorder or drop
artifact_plus = artifact + bytes([0x98, 0x06, 0x07])
with grpc.insecure_channel("127.0.0.1:%d" % fport[1]) as ch:
    relay = ch.unary_unary("/qmesh.v1.Hub/Relay")
    for a in (artifact, artifact_plus):
        R.eq(relay(a, timeout=10), b"", "hub relays")
    batch = pb.ArtifactBatch(artifacts=[artifact, artifact_plus]).SerializeToString() + bytes([0xa0, 0x06, 0x01])
    reply = pb.BatchReply.FromString(ch.unary_unary("/qmesh.v1.Hub/RelayBatch")(batch, timeout=10))
    R.eq([i.code for i in reply.items], [0, 0], "hub relays a batch")
for pid in ("PROVIDER_A", "PROVIDER_B", "PROVIDER_C"):
    R.eq(captured.get(pid), [artifact, artifact_plus], "%s received byte-identical artifacts" % pid)
    R.eq(captured.get(pid + "/batch"), [batch], "%s received the byte-identical batch" % pid)
meshlib.stop(hub)
for s in fakes:
    s.stop(0)

for rid, p in procs.items():
    R.eq(meshlib.stop(p), 0, "%s exits 0 on SIGTERM" % rid)
R.finish()
