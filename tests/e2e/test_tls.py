"""test_tls: mutual TLS through the real binaries. The demo's counts are unchanged with TLS
on; a client without a certificate, with an expired one or one from another CA is refused at
the handshake; a hub certificate presented to the auditor and a provider reporting another
provider's outcome are refused with PERMISSION_DENIED and counted."""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402

BIN = meshlib.parse_bin()
QMESH = os.path.join(BIN, "qmesh")
R = meshlib.Results()
pb = meshlib.pb()

work = tempfile.mkdtemp(prefix="qmesh-tls-")
certs = os.path.join(work, "certs")
keys = os.path.join(work, "keys")
subprocess.run([QMESH, "certs", "--out", certs], check=True, capture_output=True)
subprocess.run([QMESH, "keygen", "--out", keys], check=True, capture_output=True)
text, ports = meshlib.topology_yaml(extra="tls: { ca: %s/ca.crt, certs_dir: %s }\nkeys_dir: %s\n" % (certs, certs, keys))
topo = meshlib.write_topology(text)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def creds(identity=None, key=None, cert=None):
    return grpc.ssl_channel_credentials(read(os.path.join(certs, "ca.crt")),
                                        key or (read(os.path.join(certs, identity + ".key")) if identity else None),
                                        cert or (read(os.path.join(certs, identity + ".crt")) if identity else None))


def call(port, server_id, method, req, reply_cls, channel_creds, timeout=5, ready=False):
    opts = [("grpc.ssl_target_name_override", server_id)]
    with grpc.secure_channel("127.0.0.1:%d" % port, channel_creds, options=opts) as ch:
        fn = ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=reply_cls.FromString)
        return fn(req, timeout=timeout, wait_for_ready=ready)


def code_of(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


# 1. The demo with TLS on: the reference's counts.
p = subprocess.run([QMESH, "demo", "--topology", topo, "--json"], capture_output=True, text=True, timeout=300,
                   env=meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="PROVIDER_C", TOTAL_REQUESTS=100))
R.eq(p.returncode, 0, "TLS demo exit (%s)" % p.stderr[-400:])
if p.returncode == 0:
    got = json.loads(p.stdout)
    R.eq((got["quorum_successes"], got["quorum_failures"], got["byzantine_at"]), (56, 44, 75), "TLS demo quorum")
    R.eq({x["id"]: x["disagreements"] for x in got["providers"]},
         {"PROVIDER_A": 25, "PROVIDER_B": 24, "PROVIDER_C": 27}, "TLS demo disagreements")
    R.eq(got["decided"], 100, "TLS demo decided")

# 2. A running mesh for the refusals.
env = meshlib.clean_env()
procs = {}
for rid in ["AUDITOR", "PROVIDER_A", "PROVIDER_B", "PROVIDER_C", "HUB_A", "NUVL_A"]:
    procs[rid] = meshlib.spawn(meshlib.role_args(BIN, topo, rid), env=env, stderr=subprocess.DEVNULL)
for rid in procs:
    R.eq(code_of(lambda rid=rid: call(ports[rid], rid, "/grpc.health.v1.Health/Check", pb.StatsRequest(),
                                      pb.StatsRequest, creds("requester"), timeout=20, ready=True)), "OK",
         rid + " serves over TLS")

AUD = ports["AUDITOR"]
summary = lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Stats", pb.StatsRequest(), pb.RoleStats, creds("requester"))
counter = lambda name: {c.name: c.value for c in summary().counters}.get(name, 0)

R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary,
                          creds(None))), "UNAVAILABLE", "a client without a certificate is refused")
with grpc.insecure_channel("127.0.0.1:%d" % AUD) as ch:
    R.eq(code_of(lambda: ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)), "UNAVAILABLE",
         "a plaintext client is refused")


def forged_cert(cn, days_valid, own_ca):
    key = ec.generate_private_key(ec.SECP256R1())
    if own_ca:
        issuer_key = ec.generate_private_key(ec.SECP256R1())
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil CA")])
    else:
        issuer_key = serialization.load_pem_private_key(read(os.path.join(certs, "ca.key")), None)
        issuer = x509.load_pem_x509_certificate(read(os.path.join(certs, "ca.crt"))).subject
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(now + datetime.timedelta(days=days_valid))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(issuer_key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()), cert.public_bytes(serialization.Encoding.PEM))


k, c = forged_cert("PROVIDER_A", -1, own_ca=False)
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary,
                          creds(key=k, cert=c))), "UNAVAILABLE", "an expired certificate is refused")
k, c = forged_cert("PROVIDER_A", 30, own_ca=True)
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary,
                          creds(key=k, cert=c))), "UNAVAILABLE", "a certificate from another CA is refused")
k, c = forged_cert("PROVIDER_A", 30, own_ca=False)
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary,
                          creds(key=k, cert=c))), "OK", "the check can fail: a valid certificate of the CA passes")


def signed_outcome(pid):
    key = serialization.load_pem_private_key(read(os.path.join(keys, pid + ".key")), None)
    o = pb.Outcome(request_repr=hashlib.sha256(b"tls-%s" % pid.encode()).digest(), provider_id=pid,
                   domain="payments", initiated=True, sequence=5).SerializeToString()
    return pb.SignedOutcome(outcome=o, signature=key.sign(o), key_id=pid)


before = counter("refused_unauthorized")
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Report", signed_outcome("PROVIDER_A"), pb.ReportReply,
                          creds("HUB_A"))), "PERMISSION_DENIED", "a hub certificate presented to the auditor is refused")
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Report", signed_outcome("PROVIDER_A"), pb.ReportReply,
                          creds("PROVIDER_B"))), "PERMISSION_DENIED",
     "a provider certificate reporting another provider's outcome is refused")
R.eq(code_of(lambda: call(AUD, "AUDITOR", "/qmesh.v1.Auditor/Report", signed_outcome("PROVIDER_A"), pb.ReportReply,
                          creds("PROVIDER_A"))), "OK", "the provider reporting its own outcome is accepted")
R.eq(counter("refused_unauthorized") - before, 2, "refusals are counted")


def mux_frame(port, server_id, method, req, channel_creds):
    """One frame on the server's Mux stream: (stream status name, the reply frame or None)."""
    opts = [("grpc.ssl_target_name_override", server_id)]
    path = "/qmesh.v1.%s/Mux" % method.split("/")[1].split(".")[-1]
    frames = pb.MuxFrames(frames=[pb.MuxFrame(id=7, method=method, payload=req.SerializeToString())])
    with grpc.secure_channel("127.0.0.1:%d" % port, channel_creds, options=opts) as ch:
        st = ch.stream_stream(path, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.MuxFrames.FromString)
        try:
            got = [f for m in st(iter([frames]), timeout=5) for f in m.frames]
            return "OK", (got[0] if got else None)
        except grpc.RpcError as e:
            return e.code().name, None


# The same authorization holds for calls carried as frames on a Mux stream: each frame is
# checked against the stream's certificate.
before = counter("refused_unauthorized")
for who, want in (("HUB_A", 7), ("PROVIDER_B", 7), ("PROVIDER_A", 0)):
    code, frame = mux_frame(AUD, "AUDITOR", "/qmesh.v1.Auditor/Report", signed_outcome("PROVIDER_A"), creds(who))
    R.eq((code, frame.id if frame else None, frame.status if frame else None), ("OK", 7, want),
         "a Report frame on the auditor's Mux with %s's certificate: status %d" % (who, want))
R.eq(counter("refused_unauthorized") - before, 2, "refusals of frames are counted")
code, frame = mux_frame(AUD, "AUDITOR", "/qmesh.v1.Auditor/Report", signed_outcome("PROVIDER_A"), creds())
R.eq(code, "UNAVAILABLE", "no client certificate: no Mux stream either")
art = pb.Artifact(request_repr=hashlib.sha256(b"x").digest(), domain="payments")
code, frame = mux_frame(ports["HUB_A"], "HUB_A", "/qmesh.v1.Hub/Relay", art, creds("NUVL_B"))
R.eq((code, frame.status if frame else None), ("OK", 7), "a Relay frame from another region's front is refused")
R.eq(code_of(lambda: call(ports["HUB_A"], "HUB_A", "/qmesh.v1.Hub/Relay", art, pb.RelayReply, creds("NUVL_B"))),
     "PERMISSION_DENIED", "a hub refuses another region's front")
R.eq(code_of(lambda: call(ports["PROVIDER_A"], "PROVIDER_A", "/qmesh.v1.Provider/Evaluate", art, pb.EvaluateReply,
                          creds("NUVL_A"))), "PERMISSION_DENIED", "a provider refuses a front")
R.eq(code_of(lambda: call(ports["NUVL_A"], "NUVL_A", "/qmesh.v1.Front/Submit", pb.SubmitRequest(payload=b"tls"),
                          pb.SubmitReply, creds("requester"), timeout=15)), "OK", "the whole chain works over mTLS")
for rid, proc in procs.items():
    R.eq(meshlib.stop(proc), 0, rid + " exits 0")
R.finish()
