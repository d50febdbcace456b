"""test_hostile: a catalogue of hostile inputs against the real binaries. Each entry asserts
the gRPC status the mesh answers AND the counter that moves (the role's
/qmesh.v1.<Service>/Stats counters or the auditor Summary's rejected_by_reason), and that
the server keeps serving afterwards (docs/FAULTS.md lists the catalogue).

Forged votes (we hold the providers' Ed25519 keys from `qmesh keygen`, PEM, and sign with
python3-cryptography): a forged signature, one flipped bit, a replay (DUPLICATE, then
LATE), an unknown signer, a signer mismatch, signed bytes that are no Outcome, a vote for a
request never submitted (held pending, decided incomplete at the deadline). Front inputs:
oversized payloads, non-printable / non-UTF-8 / oversized metadata (sent as raw HTTP/2
frames, because every gRPC client library refuses to send them), an unknown domain.
Every method with malformed protobuf bytes; unknown methods and services. Process inputs:
TOTAL_REQUESTS=0, nonsense environment values, a port already in use, YAML with deep
nesting and an alias bomb."""
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import grpc
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402
from meshlib import CHANNEL_OPTS, PROVIDERS, SERVICE, role_of, unary  # noqa: E402

BIN = meshlib.parse_bin()
QMESH = os.path.join(BIN, "qmesh")
R = meshlib.Results()
pb = meshlib.pb()
T0 = time.time()
WORK = tempfile.mkdtemp(prefix="qmesh-hostile-")
KEYS = os.path.join(WORK, "keys")
subprocess.run([QMESH, "keygen", "--out", KEYS], check=True, capture_output=True)
DEADLINE_MS = 1000


def log(msg):
    print("[%6.1fs] %s" % (time.time() - T0, msg), flush=True)


# ------------------------------------------------- raw HTTP/2 (for what grpcio refuses) ----
# grpcio (and every gRPC library built on the C core) refuses to *send* a metadata value
# that is not printable ASCII. A hostile client is under no such rule, so these requests
# are written as HTTP/2 frames by hand: HPACK literals without Huffman coding, one stream.
STATIC_TABLE = [None, (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
                (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
                (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
                (":status", "404"), (":status", "500"), ("accept-charset", ""),
                ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
                ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
                ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
                ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
                ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
                ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
                ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
                ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
                ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
                ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
                ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""),
                ("via", ""), ("www-authenticate", "")]


def _hpack_int(v, prefix, first=0):
    m = (1 << prefix) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def _hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


class _HpackDecoder:
    def __init__(self):
        self.dynamic = []

    @staticmethod
    def _int(b, i, prefix):
        m = (1 << prefix) - 1
        v = b[i] & m
        i += 1
        if v < m:
            return v, i
        shift = 0
        while True:
            c = b[i]
            i += 1
            v += (c & 127) << shift
            shift += 7
            if not c & 128:
                return v, i

    def _str(self, b, i):
        huffman = b[i] & 0x80
        n, i = self._int(b, i, 7)
        s = bytes(b[i:i + n])
        return (b"<huffman>" if huffman else s), i + n

    def _entry(self, idx):
        if idx < len(STATIC_TABLE):
            return tuple(x.encode() for x in STATIC_TABLE[idx])
        return self.dynamic[idx - len(STATIC_TABLE)]

    def decode(self, b):
        out, i = [], 0
        while i < len(b):
            c = b[i]
            if c & 0x80:
                idx, i = self._int(b, i, 7)
                out.append(self._entry(idx))
            elif c & 0x40 or not c & 0x20:
                inc = bool(c & 0x40)
                idx, i = self._int(b, i, 6 if inc else 4)
                name = self._entry(idx)[0] if idx else None
                if name is None:
                    name, i = self._str(b, i)
                value, i = self._str(b, i)
                out.append((name, value))
                if inc:
                    self.dynamic.insert(0, (name, value))
            else:
                _, i = self._int(b, i, 5)  # dynamic table size update
        return out


def _frame(typ, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", stream) + payload


def h2_unary(addr, path, body, headers=(), timeout=10):
    """One gRPC unary call as raw HTTP/2 frames. Returns (grpc-status int or None, message)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    hdrs = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()), (b":authority", addr.encode()),
            (b"content-type", b"application/grpc"), (b"te", b"trailers")] + list(headers)
    block = b"".join(_hpack_literal(k, v) for k, v in hdrs)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 0x4, 1, block) +
              _frame(0, 0x1, 1, b"\x00" + struct.pack(">I", len(body)) + body))
    dec, buf, got, pending, done = _HpackDecoder(), b"", [], b"", False
    try:
        while not done:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            n, typ, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
            payload, buf = buf[9:9 + n], buf[9 + n:]
            if typ == 4 and not flags & 1:
                s.sendall(_frame(4, 1, 0, b""))  # SETTINGS ack
            elif typ == 6 and not flags & 1:
                s.sendall(_frame(6, 1, 0, payload))  # PING ack
            elif typ == 7 or (sid == 1 and typ == 3):  # GOAWAY, RST_STREAM
                done = True
            elif sid == 1 and typ in (1, 9):  # HEADERS, CONTINUATION
                if typ == 1 and flags & 0x8:
                    payload = payload[1:len(payload) - payload[0]]
                if typ == 1 and flags & 0x20:
                    payload = payload[5:]
                pending += payload
                if flags & 0x4:
                    got += dec.decode(pending)
                    pending = b""
                done = bool(flags & 0x1)
            elif sid == 1 and typ == 0:
                done = bool(flags & 0x1)
    except (EOFError, OSError):
        pass
    s.close()
    h = {k.decode(): v.decode("latin-1") for k, v in got}
    return (int(h["grpc-status"]) if h.get("grpc-status", "").isdigit() else None), h.get("grpc-message", "")


# ------------------------------------------------------------------- the mesh ----
text, PORTS = meshlib.topology_yaml(deadline_ms=DEADLINE_MS, extra="keys_dir: %s\n" % KEYS)
TOPO = meshlib.write_topology(text)
AUDIT_LOG = os.path.join(WORK, "audit.log")
ENV = meshlib.clean_env(RANDOM_SEED=7, BYZANTINE_PROVIDER="none")
PROCS = meshlib.start_mesh(BIN, TOPO, PORTS, ENV, audit_log=AUDIT_LOG, stderr=subprocess.DEVNULL)


def addr(rid):
    return "127.0.0.1:%d" % PORTS[rid]


AUD, FRONT, HUB, PROV = addr("AUDITOR"), addr("NUVL_A"), addr("HUB_A"), addr("PROVIDER_A")


def stats(rid):
    s = unary(addr(rid), "/qmesh.v1.%s/Stats" % SERVICE[role_of(rid)], pb.StatsRequest(), pb.RoleStats)
    return {c.name: c.value for c in s.counters}


def summary():
    return unary(AUD, "/qmesh.v1.Auditor/Summary", pb.SummaryRequest(), pb.Summary)


def reasons(s=None):
    s = s or summary()
    return {c.name: c.value for c in s.rejected_by_reason}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def serving(rid):
    try:
        with grpc.insecure_channel(addr(rid), options=CHANNEL_OPTS) as ch:
            return ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5) == b"\x08\x01"
    except grpc.RpcError:
        return False


def raw_call(target, method, body, metadata=None, timeout=10):
    """A call with raw bytes in and out: (status name, details, reply bytes)."""
    with grpc.insecure_channel(target, options=CHANNEL_OPTS) as ch:
        try:
            r = ch.unary_unary(method)(body, metadata=metadata, timeout=timeout)
            return "OK", "", r
        except grpc.RpcError as e:
            return e.code().name, e.details() or "", None


def key(pid):
    with open(os.path.join(KEYS, pid + ".key"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def outcome(tag, provider="PROVIDER_A", domain="payments", initiated=True, seq=10**6):
    return pb.Outcome(request_repr=hashlib.sha256(tag.encode()).digest(), provider_id=provider, domain=domain,
                      initiated=initiated, sequence=seq, decided_unix_nanos=time.time_ns()).SerializeToString()


def report(so):
    """Report a SignedOutcome: (status name, details, ReportReply.Result name or None)."""
    code, details, reply = raw_call(AUD, "/qmesh.v1.Auditor/Report", so.SerializeToString())
    res = pb.ReportReply.Result.Name(pb.ReportReply.FromString(reply).result) if code == "OK" else None
    return code, details, res


def signed(data, signer, key_id=None):
    return pb.SignedOutcome(outcome=data, signature=key(signer).sign(data), key_id=key_id or signer)


def vote_case(name, so, want_code, want_result, want_stats, want_reason=None):
    """One hostile Report: status, the auditor's Stats counter and Summary reason."""
    b_stats, b_sum = stats("AUDITOR"), summary()
    code, details, res = report(so)
    a_stats, a_sum = stats("AUDITOR"), summary()
    R.eq((code, res), (want_code, want_result), "%s: status (%s)" % (name, details))
    d = delta(b_stats, a_stats)
    d.pop("rpc_calls", None)
    R.eq(d, want_stats, name + ": auditor Stats counters moved")
    if want_reason:
        R.eq(delta(reasons(b_sum), reasons(a_sum)), {want_reason: 1}, name + ": Summary rejected_by_reason")
        R.eq(a_sum.votes_rejected - b_sum.votes_rejected, 1, name + ": Summary votes_rejected")
    R.eq(a_sum.votes_accepted - b_sum.votes_accepted, 1 if want_result == "ACCEPTED" else 0,
         name + ": votes_accepted moves only for a genuine new vote")
    return details


# ---- forged votes at the auditor ----
good = outcome("hostile-1")
sig = key("PROVIDER_A").sign(good)
forged = bytes([sig[0] ^ 0x80]) + sig[1:]
d = vote_case("forged signature", pb.SignedOutcome(outcome=good, signature=forged, key_id="PROVIDER_A"),
              "UNAUTHENTICATED", None, {"rejected_bad_signature": 1, "rpc_failed": 1}, "bad_signature")
R.check("PROVIDER_A" in d, "the forged-signature refusal names the signer: " + d)
vote_case("random 64-byte signature", pb.SignedOutcome(outcome=good, signature=os.urandom(64), key_id="PROVIDER_A"),
          "UNAUTHENTICATED", None, {"rejected_bad_signature": 1, "rpc_failed": 1}, "bad_signature")
vote_case("truncated signature", pb.SignedOutcome(outcome=good, signature=sig[:63], key_id="PROVIDER_A"),
          "UNAUTHENTICATED", None, {"rejected_bad_signature": 1, "rpc_failed": 1}, "bad_signature")
for bit in (0, 8 * (len(good) // 2) + 3, 8 * len(good) - 1):
    flipped = bytearray(good)
    flipped[bit // 8] ^= 1 << (bit % 8)
    vote_case("one flipped bit (bit %d) in the Outcome" % bit,
              pb.SignedOutcome(outcome=bytes(flipped), signature=sig, key_id="PROVIDER_A"),
              "UNAUTHENTICATED", None, {"rejected_bad_signature": 1, "rpc_failed": 1}, "bad_signature")
d = vote_case("unknown signer", signed(good, "PROVIDER_A", "PROVIDER_Z"), "UNAUTHENTICATED", None,
              {"rejected_unknown_signer": 1, "rpc_failed": 1}, "unknown_signer")
R.check("PROVIDER_Z" in d, "the unknown signer is named: " + d)
vote_case("signer mismatch (B signs A's outcome)", signed(good, "PROVIDER_B"), "PERMISSION_DENIED", None,
          {"rejected_signer_mismatch": 1, "rpc_failed": 1}, "signer_mismatch")
vote_case("signed bytes that are no Outcome", signed(b"\xff\xff\xff\xff", "PROVIDER_A"), "INVALID_ARGUMENT", None,
          {"rejected_malformed": 1, "rpc_failed": 1}, "malformed")
short = pb.Outcome(request_repr=b"12345", provider_id="PROVIDER_A", domain="payments").SerializeToString()
vote_case("an Outcome with a 5-byte request_repr", signed(short, "PROVIDER_A"), "INVALID_ARGUMENT", None,
          {"rejected_malformed": 1, "rpc_failed": 1}, "malformed")
vote_case("an empty SignedOutcome (no signer)", pb.SignedOutcome(), "UNAUTHENTICATED", None,
          {"rejected_unknown_signer": 1, "rpc_failed": 1}, "unknown_signer")
# the genuine vote is taken once; the replay is DUPLICATE; nothing above was recorded
vote_case("the genuine vote", signed(good, "PROVIDER_A"), "OK", "ACCEPTED", {"votes_accepted": 1})
vote_case("a replayed outcome", signed(good, "PROVIDER_A"), "OK", "DUPLICATE", {"votes_duplicate": 1})
repr1 = hashlib.sha256(b"hostile-1").digest()
lk = unary(AUD, "/qmesh.v1.Auditor/Lookup", pb.LookupRequest(request_repr_hex=repr1.hex()), pb.LookupReply)
R.eq([(v.provider_id, v.initiated) for v in lk.votes], [("PROVIDER_A", True)], "only the genuine vote is recorded")

# ---- a vote for a request never submitted ----
# The auditor cannot know what was submitted (it opens no connection and the front's traffic
# never reaches it): a correctly signed vote for an unknown request is taken, held pending,
# and decided incomplete at the deadline, counted like any request a provider missed.
s0 = summary()
R.eq(lk.state, "pending", "a vote for a request never submitted is held pending")
R.eq(s0.pending, 1, "Summary counts it pending")
time.sleep(DEADLINE_MS / 1000 + 0.3)
s1 = summary()
lk = unary(AUD, "/qmesh.v1.Auditor/Lookup", pb.LookupRequest(request_repr_hex=repr1.hex()), pb.LookupReply)
R.eq(lk.state, "incomplete", "at the deadline it is decided incomplete")
R.eq((s1.pending, s1.decided - s0.decided, s1.incomplete - s0.incomplete), (0, 1, 1),
     "Summary: decided +1, incomplete +1, nothing pending")
R.eq(lk.quorum_success, False, "one initiated vote of three is no quorum (k=2)")
vote_case("a vote after the decision", signed(outcome("hostile-1", "PROVIDER_B"), "PROVIDER_B"), "OK", "LATE",
          {"votes_late": 1})
vote_case("the replay again, after the decision", signed(good, "PROVIDER_A"), "OK", "LATE", {"votes_late": 1})
s2 = summary()
R.eq((s2.decided, s2.votes_accepted), (s1.decided, s1.votes_accepted), "late votes change no decision, no count")


def varint(n):
    out = b""
    while n >= 128:
        out += bytes([(n & 127) | 128])
        n >>= 7
    return out + bytes([n])


# A correctly signed vote larger than an audit-log record (64 KiB; here 80 KiB of unknown
# field 1023). Only a key holder can make one. It must not be counted nor logged. Today the
# auditor answers UNAVAILABLE ("cannot append to the audit log", counted audit_log_failed),
# which a real provider would keep retrying for 60 s; INVALID_ARGUMENT counted
# rejected_malformed would be the permanent refusal (reported; either is accepted here).
big = outcome("hostile-big") + b"\xfa\x3f" + varint(80 * 1024) + b"z" * (80 * 1024)
b_stats, b_sum = stats("AUDITOR"), summary()
code, details, res = report(signed(big, "PROVIDER_A"))
dd = delta(b_stats, stats("AUDITOR"))
a_sum = summary()
R.check((code, dd.get("audit_log_failed")) == ("UNAVAILABLE", 1) or
        (code, dd.get("rejected_malformed")) == ("INVALID_ARGUMENT", 1),
        "an 80 KiB signed vote is refused and counted: %s %r (%s)" % (code, dd, details))
R.eq((a_sum.votes_accepted, a_sum.audit_log_records), (b_sum.votes_accepted, b_sum.audit_log_records),
     "the 80 KiB vote is neither counted nor logged")


# ---- batches: one Ed25519 signature over a Merkle root, a proof per vote (ReportBatch) ----
def merkle_leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_levels(leaves):
    levels = [leaves]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        levels.append([hashlib.sha256(b"\x01" + cur[i] + cur[i + 1]).digest() if i + 1 < len(cur) else cur[i]
                       for i in range(0, len(cur), 2)])
    return levels


def signed_batch(outcomes, signer="PROVIDER_A"):
    """A SignedOutcomeBatch as a provider makes it (pkg/merkle.c): SHA-256(0x00||outcome)
    leaves, SHA-256(0x01||l||r) nodes, odd nodes carried up; the key signs
    "qmesh.v1.batch" || u32 count (big-endian) || root."""
    levels = merkle_levels([merkle_leaf(o) for o in outcomes])
    root, n = levels[-1][0], len(outcomes)
    sig = key(signer).sign(b"qmesh.v1.batch" + struct.pack(">I", n) + root)
    votes = []
    for i, o in enumerate(outcomes):
        proof, idx = [], i
        for lv in levels[:-1]:
            if idx ^ 1 < len(lv):
                proof.append(lv[idx ^ 1])
            idx //= 2
        votes.append(pb.SignedOutcome(outcome=o, signature=sig, key_id=signer, proof=proof, leaf_index=i,
                                      leaf_count=n))
    return votes


def report_batch(votes):
    code, details, reply = raw_call(AUD, "/qmesh.v1.Auditor/ReportBatch",
                                    pb.SignedOutcomeBatch(votes=votes).SerializeToString())
    if code != "OK":
        return code, details, None
    return code, details, [(pb.ReportReply.Result.Name(r.result), r.error) for r in
                           pb.ReportBatchReply.FromString(reply).replies]


def batch_case(name, votes, want_results, want_stats):
    b_stats, b_sum = stats("AUDITOR"), summary()
    code, details, res = report_batch(votes)
    a_stats, a_sum = stats("AUDITOR"), summary()
    R.eq((code, [r for r, _ in res or []]), ("OK", want_results), "%s: per-vote results (%s %r)" % (name, details, res))
    d = delta(b_stats, a_stats)
    d.pop("rpc_calls", None)
    R.eq(d, want_stats, name + ": auditor Stats counters moved")
    R.eq(a_sum.votes_rejected - b_sum.votes_rejected, want_results.count("REJECTED"), name + ": votes_rejected")
    return res


if "ReportBatch" in meshlib.reflected_methods(AUD, "qmesh.v1.Auditor"):
    outs = [outcome("batch-%d" % i) for i in range(5)]
    batch_case("a genuine batch of 5", signed_batch(outs), ["ACCEPTED"] * 5, {"votes_accepted": 5})
    batch_case("the same batch replayed", signed_batch(outs), ["DUPLICATE"] * 5, {"votes_duplicate": 5})
    outs = [outcome("batch2-%d" % i) for i in range(3)]
    votes = signed_batch(outs)
    t = bytearray(votes[1].outcome)
    t[-2] ^= 0x04
    votes[1].outcome = bytes(t)
    res = batch_case("one vote of a batch edited after signing", votes, ["ACCEPTED", "REJECTED", "ACCEPTED"],
                     {"votes_accepted": 2, "rejected_bad_signature": 1})
    votes = signed_batch([outcome("batch3-%d" % i) for i in range(4)])
    votes[2].proof[0] = bytes(32)
    batch_case("a forged Merkle proof", votes, ["ACCEPTED", "ACCEPTED", "REJECTED", "ACCEPTED"],
               {"votes_accepted": 3, "rejected_bad_signature": 1})
    votes = signed_batch([outcome("batch4-%d" % i) for i in range(2)])
    votes[0].leaf_count = 100000
    votes[1].proof.append(bytes(32))
    batch_case("a leaf count past 4096, and a proof one hash too long", votes, ["REJECTED", "REJECTED"],
               {"rejected_bad_signature": 2})
    votes = signed_batch([outcome("batch5-%d" % i, provider="PROVIDER_B") for i in range(2)], signer="PROVIDER_B")
    votes[1].key_id = "PROVIDER_A"
    batch_case("a batch root signed by B presented as A's", votes, ["ACCEPTED", "REJECTED"],
               {"votes_accepted": 1, "rejected_bad_signature": 1})
    lone = signed(outcome("batch6"), "PROVIDER_A")
    lone.proof.append(bytes(32))
    batch_case("a lone outcome that carries a proof", [lone], ["REJECTED"], {"rejected_bad_signature": 1})
    batch_case("an empty batch", [], [], {})
log("forged votes done")

# ---- the front: payload size ----
SUBMIT = "/qmesh.v1.Front/Submit"


def submit(payload, md=None, target=FRONT):
    return raw_call(target, SUBMIT, pb.SubmitRequest(payload=payload).SerializeToString(), md)


def front_case(name, payload, md, want_code, want_delta, detail_has=""):
    b = stats("NUVL_A")
    code, details, _ = submit(payload, md)
    a = stats("NUVL_A")
    R.eq(code, want_code, "%s: status (%s)" % (name, details))
    if detail_has:
        R.check(detail_has in details, "%s: details say %r: %r" % (name, detail_has, details))
    dd = delta(b, a)
    dd.pop("rpc_calls", None)
    R.eq(dd, want_delta, name + ": front Stats counters moved")


front_case("a 64 KiB payload (the limit)", b"x" * 65536, [("x-request-seq", "900001")], "OK",
           {"submit_accepted": 1, "submit_forwarded": 1})
front_case("a payload of 64 KiB + 1", b"x" * 65537, None, "RESOURCE_EXHAUSTED",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "65537")
front_case("a 1 MiB payload", b"x" * (1 << 20), None, "RESOURCE_EXHAUSTED",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "exceeds")
# beyond the transport's 4 MiB message limit libgrpc refuses it before the front sees it
b = stats("NUVL_A")
code, details, _ = submit(b"x" * (5 << 20))
R.eq(code, "RESOURCE_EXHAUSTED", "a 5 MiB payload: refused by the transport (%s)" % details)
dd = delta(b, stats("NUVL_A"))
R.eq({k: v for k, v in dd.items() if k.startswith("submit")}, {}, "a 5 MiB payload never reaches the handler")

# ---- the front: metadata ----
front_case("a 2 KiB x-verification-context", b"{}", [("x-verification-context", "A" * 2048)], "INVALID_ARGUMENT",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "too long")
front_case("a 100-byte x-domain", b"{}", [("x-domain", "d" * 100)], "INVALID_ARGUMENT",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "too long")
front_case("x-request-seq not a number", b"{}", [("x-request-seq", "12a")], "INVALID_ARGUMENT",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "12a")
front_case("x-request-seq past 2^64", b"{}", [("x-request-seq", "18446744073709551616")], "INVALID_ARGUMENT",
           {"submit_refused_invalid": 1, "rpc_failed": 1}, "not an unsigned integer")
# over libgrpc's 16 KiB metadata limit: the transport refuses it, the handler never runs
b = stats("NUVL_A")
code, details, _ = submit(b"{}", [("x-verification-context", "A" * 20000)])
R.eq(code, "RESOURCE_EXHAUSTED", "20 KB of metadata: refused by the transport (%s)" % details)
R.eq({k: v for k, v in delta(b, stats("NUVL_A")).items() if k.startswith("submit")}, {},
     "20 KB of metadata never reaches the handler")
body = pb.SubmitRequest(payload=b'{"i":1}').SerializeToString()
for name, hdr in [("a control byte in x-domain", (b"x-domain", b"pay\x01ments")),
                  ("DEL in x-domain", (b"x-domain", b"pay\x7fments")),
                  ("a tab in x-verification-context", (b"x-verification-context", b"CTX\tALPHA")),
                  ("UTF-8 (e-acute) in x-verification-context", (b"x-verification-context", "CTX_\u00e9".encode())),
                  ("non-UTF-8 bytes in x-verification-context", (b"x-verification-context", b"\xff\xfe\x80")),
                  ("a NUL in x-request-seq", (b"x-request-seq", b"1\x002"))]:
    b = stats("NUVL_A")
    code, message = h2_unary(FRONT, SUBMIT, body, [hdr])
    R.eq(code, 3, "%s (raw HTTP/2): INVALID_ARGUMENT (%r)" % (name, message))
    R.check("not printable" in message, "%s: the message says why: %r" % (name, message))
    dd = delta(b, stats("NUVL_A"))
    dd.pop("rpc_calls", None)
    R.eq(dd, {"submit_refused_invalid": 1, "rpc_failed": 1}, name + ": front Stats counters moved")
code, message = h2_unary(FRONT, SUBMIT, body, [(b"x-domain", b"storage"), (b"x-request-seq", b"900002")])
R.eq(code, 0, "the raw HTTP/2 client is a real client: a clean request is OK (%r)" % message)
R.check(serving("NUVL_A"), "the front keeps serving after hostile metadata")

# ---- the front: SubmitBatch, item by item ----
SUBMIT_BATCH = "/qmesh.v1.Front/SubmitBatch"


def submit_batch(items):
    code, details, body = raw_call(FRONT, SUBMIT_BATCH, pb.SubmitBatchRequest(items=items).SerializeToString())
    return code, details, (pb.BatchReply.FromString(body) if code == "OK" else None)


b = stats("NUVL_A")
b_hub = stats("HUB_A")
good = pb.SubmitItem(payload=b'{"batch":1}', verification_context="CTX_ALPHA", domain="identity", sequence=900010,
                     has_sequence=True)
items = [good,
         pb.SubmitItem(payload=b"{}", verification_context="CTX\tALPHA"),
         pb.SubmitItem(payload=b"{}", domain="d" * 100),
         pb.SubmitItem(payload=b"x" * 65537),
         pb.SubmitItem(payload=b'{"batch":2}')]  # no domain: payments, no sequence: counted
code, details, rep = submit_batch(items)
R.eq(code, "OK", "a mixed SubmitBatch: the call succeeds (%s)" % details)
if rep:
    R.eq([i.code for i in rep.items], [0, 3, 3, 8, 0],
         "a mixed SubmitBatch: one status per item (OK, INVALID_ARGUMENT x2, RESOURCE_EXHAUSTED, OK)")
    R.eq([i.message for i in rep.items][0], "", "an accepted item gets the constant empty answer")
    R.check("not printable" in rep.items[1].message and "too long" in rep.items[2].message and
            "65537" in rep.items[3].message, "each refused item says why: %r" % [i.message for i in rep.items])
dd = delta(b, stats("NUVL_A"))
dd.pop("rpc_calls", None)
R.eq(dd, {"submit_batch_calls": 1, "submit_accepted": 2, "submit_forwarded": 2, "submit_refused_invalid": 3,
          "submit_without_seq": 1}, "a mixed SubmitBatch: front Stats counters moved item by item")
# The accepted items of one call leave together: one RelayBatch to the hub (the hub's
# rpc_calls also counts the Stats call that reads it), not one relay call per item.
dd = delta(b_hub, stats("HUB_A"))
R.eq((dd.get("rpc_calls", 0) - 1, dd.get("artifacts_received", 0)), (1, 2),
     "a mixed SubmitBatch: its 2 accepted items reach the hub in one relay call")
deadline = time.time() + 10
lk = None
while time.time() < deadline:
    lk = unary(AUD, "/qmesh.v1.Auditor/Lookup",
               pb.LookupRequest(request_repr_hex=hashlib.sha256(b'{"batch":1}').hexdigest()), pb.LookupReply)
    if lk.state == "decided":
        break
    time.sleep(0.05)
R.eq((lk.domain, lk.state, len(lk.votes)), ("identity", "decided", 3),
     "an item accepted in a SubmitBatch is decided with its own domain and three votes")
# DecisionTimes: the auditor's decision time of that item (sequence 900010), read-only
DT = "/qmesh.v1.Auditor/DecisionTimes"
code, details, body = raw_call(AUD, DT, pb.DecisionTimesRequest(first_sequence=900009, count=3).SerializeToString())
R.eq(code, "OK", "DecisionTimes answers (%s)" % details)
if code == "OK":
    ns = list(pb.DecisionTimes.FromString(body).decided_unix_nanos)
    R.check(len(ns) == 3 and ns[0] == 0 and ns[2] == 0 and abs(ns[1] - time.time() * 1e9) < 60e9,
            "DecisionTimes: the decided sequence has a wall-clock time, its neighbours 0: %r" % ns)
for name, rq in [("65537 sequences", pb.DecisionTimesRequest(first_sequence=0, count=65537)),
                 ("a range past 2^64", pb.DecisionTimesRequest(first_sequence=2**64 - 2, count=5))]:
    code, details, _ = raw_call(AUD, DT, rq.SerializeToString())
    R.eq(code, "INVALID_ARGUMENT", "DecisionTimes for %s: refused (%s)" % (name, details))
    R.check("count" in details, "DecisionTimes for %s: the message names the count: %r" % (name, details))
for name, its, want in [("an empty SubmitBatch", [], "1 to 4096"),
                        ("a SubmitBatch of 4097 items", [pb.SubmitItem(payload=b"{}")] * 4097, "4097")]:
    b = stats("NUVL_A")
    code, details, _ = submit_batch(its)
    R.eq(code, "INVALID_ARGUMENT", "%s: status (%s)" % (name, details))
    R.check(want in details, "%s: details say %r: %r" % (name, want, details))
    dd = delta(b, stats("NUVL_A"))
    dd.pop("rpc_calls", None)
    R.eq(dd, {"submit_batch_calls": 1, "submit_refused_invalid": 1, "rpc_failed": 1}, name + ": counters moved")
log("front SubmitBatch done")

# ---- an unknown domain ----
p_before = {p: stats(p) for p in PROVIDERS}
s_before = summary()
code, details, _ = submit(b'{"hostile":"domain"}', [("x-domain", "weather"), ("x-verification-context", "CTX_ALPHA"),
                                                    ("x-request-seq", "900003")])
R.eq(code, "OK", "an unknown domain is carried (the front does not evaluate): %s" % details)
deadline = time.time() + 10
while time.time() < deadline and summary().unknown_domain_votes < s_before.unknown_domain_votes + 3:
    time.sleep(0.05)
s_after = summary()
R.eq(s_after.unknown_domain_votes - s_before.unknown_domain_votes, 3, "auditor Summary unknown_domain_votes +3")
for p in PROVIDERS:
    R.eq(delta(p_before[p], stats(p)).get("unknown_domain"), 1, "%s Stats unknown_domain +1" % p)
lk = unary(AUD, "/qmesh.v1.Auditor/Lookup",
                   pb.LookupRequest(request_repr_hex=hashlib.sha256(b'{"hostile":"domain"}').hexdigest()), pb.LookupReply)
R.eq((lk.domain, lk.state, len(lk.votes)), ("other", "decided", 3), "the unknown domain is decided, filed as 'other'")
log("front inputs done")

# ---- malformed protobuf bytes to every method ----
GARBAGE = [b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a tag varint that never ends
           b"\x0a\x10abc",                                    # a length past the end
           b"\x0f"]                                           # field 1, wire type 7 (no such type)
# the methods each role serves, as its own reflection lists them (new methods are covered too)
COUNTER = {"/qmesh.v1.Front/Submit": ("submit_refused_invalid",),
           "/qmesh.v1.Front/SubmitBatch": ("submit_batch_calls", "submit_refused_invalid"),
           "/qmesh.v1.Hub/Relay": ("refused_invalid", "artifacts_received"),
           "/qmesh.v1.Hub/RelayBatch": ("refused_invalid",),
           "/qmesh.v1.Provider/Evaluate": ("refused_invalid",),
           "/qmesh.v1.Provider/EvaluateBatch": ("refused_invalid",),
           "/qmesh.v1.Auditor/Report": ("rejected_malformed",),
           "/qmesh.v1.Auditor/ReportBatch": ("rejected_malformed",),
           "/qmesh.v1.Auditor/DecisionTimes": (),
           "/qmesh.v1.Auditor/Summary": (), "/qmesh.v1.Auditor/Lookup": (), "/qmesh.v1.Auditor/DriftTrace": ()}
METHODS = {}
for rid in ["NUVL_A", "HUB_A", "PROVIDER_A", "AUDITOR"]:
    svc = SERVICE[role_of(rid)]
    names = meshlib.reflected_methods(addr(rid), "qmesh.v1." + svc)
    R.check("Stats" in names and len(names) >= 2, "%s reflection lists its methods: %r" % (rid, names))
    METHODS[rid] = [("/qmesh.v1.%s/%s" % (svc, n), COUNTER.get("/qmesh.v1.%s/%s" % (svc, n), ())) for n in names]
for rid, methods in METHODS.items():
    for method, counter in methods + [("/grpc.health.v1.Health/Check", None)]:
        for g in GARBAGE:
            b = stats(rid)
            code, details, _ = raw_call(addr(rid), method, g)
            a = stats(rid)
            R.eq(code, "INVALID_ARGUMENT", "%s %s %s: status" % (rid, method, g[:4].hex()))
            R.check(len(details) > 5 and ("malformed" in details or "Malformed" in details),
                    "%s %s: a message says what: %r" % (rid, method, details))
            dd = delta(b, a)
            dd.pop("rpc_calls", None)
            want = {"rpc_failed": 1}
            for c in counter or ():
                want[c] = 1
            if method in COUNTER or method.endswith("/Stats") or method.endswith("/Check"):
                R.eq(dd, want, "%s %s: counters moved" % (rid, method))
            else:  # a method this catalogue does not know yet: at least the failure is counted
                R.eq({k: dd.get(k) for k in want}, want, "%s %s: counters moved" % (rid, method))
    # reflection is a stream: the bad message ends it with INVALID_ARGUMENT
    for refl in ("grpc.reflection.v1", "grpc.reflection.v1alpha"):
        with grpc.insecure_channel(addr(rid), options=CHANNEL_OPTS) as ch:
            st = ch.stream_stream("/%s.ServerReflection/ServerReflectionInfo" % refl)
            try:
                list(st(iter([GARBAGE[1]]), timeout=10))
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
        R.eq(code, "INVALID_ARGUMENT", "%s %s reflection with garbage" % (rid, refl))
    R.check(serving(rid), "%s keeps serving after malformed bytes to every method" % rid)
# an Artifact whose request_repr is not 32 bytes reaches the provider's own check
art = pb.Artifact(request_repr=b"short", verification_context="CTX_ALPHA", domain="payments").SerializeToString()
b = stats("PROVIDER_A")
code, details, _ = raw_call(PROV, "/qmesh.v1.Provider/Evaluate", art)
R.eq(code, "INVALID_ARGUMENT", "an Artifact with a 5-byte request_repr: status (%s)" % details)
R.eq(delta(b, stats("PROVIDER_A")).get("refused_invalid"), 1, "the provider counts it refused_invalid")
code, details, _ = raw_call(AUD, "/qmesh.v1.Auditor/Lookup",
                            pb.LookupRequest(request_repr_hex="zz" * 32).SerializeToString())
R.eq(code, "INVALID_ARGUMENT", "Lookup with a non-hex key (%s)" % details)
code, details, _ = raw_call(AUD, "/qmesh.v1.Auditor/Lookup",
                            pb.LookupRequest(request_repr_hex="00" * 32).SerializeToString())
R.eq(code, "NOT_FOUND", "Lookup of a request never seen (%s)" % details)

# ---- unknown methods and services ----
for rid in ["NUVL_A", "HUB_A", "PROVIDER_A", "AUDITOR"]:
    for method in ["/qmesh.v1.%s/Nope" % SERVICE[role_of(rid)], "/qmesh.v1.Admin/Shutdown", "/x"]:
        b = stats(rid)
        code, details, _ = raw_call(addr(rid), method, b"")
        R.eq(code, "UNIMPLEMENTED", "%s %s: status" % (rid, method))
        R.check(method in details, "%s: the unknown method is named: %r" % (rid, details))
        R.eq(delta(b, stats(rid)).get("rpc_unimplemented"), 1, "%s %s: rpc_unimplemented +1" % (rid, method))
# a front's method on the auditor: the auditor exposes nothing that feeds anything upstream
code, _, _ = raw_call(AUD, "/qmesh.v1.Hub/Relay", b"")
R.eq(code, "UNIMPLEMENTED", "the auditor does not serve Hub/Relay")
log("malformed and unknown methods done")

# ---- a far-future x-request-seq (opaque metadata any client sets) ----
# The front carries it, providers sign it, the auditor decides the request: counted like any
# other. Known issue (docs/FAULTS.md): the drift detector's reorder buffer then jumps its
# expected sequence past it, and every later decision is skipped by the detector
# (drift_skipped). Decisions and quorum counts are unaffected, which is what is asserted.
deadline = time.time() + 10
while time.time() < deadline and summary().pending:  # the lone votes above reach their deadline
    time.sleep(0.05)
s_b = summary()
code, details, _ = submit(b'{"hostile":"seq"}', [("x-request-seq", str(10 ** 12))])
R.eq(code, "OK", "a far-future x-request-seq is carried (%s)" % details)
deadline = time.time() + 10
while time.time() < deadline and summary().decided < s_b.decided + 1:
    time.sleep(0.05)
summary()  # nothing pending: the detector is handed what waits
for i in range(3):
    submit(b'{"after":%d}' % i, [("x-request-seq", str(i + 1))])
deadline = time.time() + 10
while time.time() < deadline and (summary().decided < s_b.decided + 4 or summary().pending):
    time.sleep(0.05)
s_a = summary()
R.eq((s_a.decided - s_b.decided, s_a.pending, s_a.votes_accepted - s_b.votes_accepted), (4, 0, 12),
     "requests after a far-future sequence are decided and counted as usual")
log("NOTE (known issue): drift detector skipped %d of the 3 decisions after x-request-seq=10^12"
    % (s_a.drift_skipped - s_b.drift_skipped))

for rid, p in PROCS.items():
    R.eq(meshlib.stop(p), 0, "%s exits 0 on SIGTERM after the hostile inputs" % rid)
p = subprocess.run([QMESH, "audit", "verify", AUDIT_LOG, "--topology", TOPO, "--keys", KEYS],
                   capture_output=True, text=True)
R.eq(p.returncode, 0, "the audit log verifies after the hostile inputs (%s%s)" % (p.stdout.strip(), p.stderr.strip()))


# ---- process inputs ----
our_processes = meshlib.processes_with


text0, _ = meshlib.topology_yaml()
topo0 = meshlib.write_topology(text0)
p = subprocess.run([QMESH, "demo", "--topology", topo0, "--json"], env=meshlib.clean_env(TOTAL_REQUESTS=0),
                   capture_output=True, text=True, timeout=120)
R.eq(p.returncode, 0, "TOTAL_REQUESTS=0: the demo exits 0 (%s)" % p.stderr[-300:])
if p.returncode == 0:
    js = json.loads(p.stdout)
    R.eq((js["total_requests"], js["decided"], js["pending"], js["votes_accepted"], js["requester"]["sent"]),
         (0, 0, 0, 0, 0), "TOTAL_REQUESTS=0: 0 sent, 0 decided")
R.eq(our_processes(topo0), [], "TOTAL_REQUESTS=0: nothing left running")

NONSENSE = [("TOTAL_REQUESTS", "abc"), ("TOTAL_REQUESTS", "-1"), ("TOTAL_REQUESTS", "1e3"), ("TOTAL_REQUESTS", " 5"),
            ("TOTAL_REQUESTS", "99999999999999999999999"), ("FAILOVER_AT", "half"), ("QUORUM_THRESHOLD", "0"),
            ("QUORUM_THRESHOLD", "4"), ("RANDOM_SEED", "1.5"), ("RANDOM_SEED", "0x10"),
            ("BYZANTINE_PROVIDER", "PROVIDER_Z"), ("BYZANTINE_AT", "soon"), ("WORKER_COUNT", "0"),
            ("WORKER_COUNT", "100000"), ("POST_QUEUE_MAX", "-5"), ("POST_QUEUE_MAX", "99999999"),
            ("EXPECTED_CONTEXT", "C" * 300), ("NUVL_A_PORT", "0"), ("AUDITOR_PORT", "70000"),
            ("PROVIDER_B_PORT", "http")]
for var, val in NONSENSE:
    env = meshlib.clean_env(**{var: val})
    for cmd in ([QMESH, "demo", "--topology", topo0], [os.path.join(BIN, "qmesh-requester"), "--topology", topo0],
                [os.path.join(BIN, "qmesh-front"), "--topology", topo0, "--id", "NUVL_A"]):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        who = os.path.basename(cmd[0]) + (" demo" if cmd[0] == QMESH else "")
        R.check(p.returncode not in (0, None) and p.returncode > 0, "%s with %s=%r exits non-zero (%r)" %
                (who, var, val[:20], p.returncode))
        R.check(var in p.stderr and "Segmentation" not in p.stderr,
                "%s names %s: %r" % (who, var, p.stderr.strip()[-160:]))
R.eq(our_processes(topo0), [], "nonsense environment: nothing left running")

# a port already in use: the role names the address and exits; the demo too, and stops the rest
text1, ports1 = meshlib.topology_yaml(extra="keys_dir: %s\n" % KEYS)
topo1 = meshlib.write_topology(text1)
for rid in ["NUVL_A", "HUB_B", "PROVIDER_C", "AUDITOR"]:
    squat = socket.socket()
    squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squat.bind(("127.0.0.1", ports1[rid]))
    squat.listen(1)
    a = "127.0.0.1:%d" % ports1[rid]
    t = time.time()
    p = subprocess.run([os.path.join(BIN, "qmesh-" + role_of(rid)), "--topology", topo1, "--id", rid],
                       env=meshlib.clean_env(), capture_output=True, text=True, timeout=60)
    R.check(p.returncode > 0, "%s on a port in use exits non-zero (%r)" % (rid, p.returncode))
    R.check(("cannot listen on %s" % a) in p.stderr, "%s names the address %s: %r" % (rid, a, p.stderr.strip()[-200:]))
    R.check(time.time() - t < 10, "%s gives up at once (%.1f s)" % (rid, time.time() - t))
    if rid == "HUB_B":
        p = subprocess.run([QMESH, "demo", "--topology", topo1], env=meshlib.clean_env(TOTAL_REQUESTS=10),
                           capture_output=True, text=True, timeout=120)
        R.check(p.returncode > 0, "qmesh demo with HUB_B's port in use exits non-zero")
        R.check(("cannot listen on %s" % a) in p.stderr, "qmesh demo names the address: %r" % p.stderr.strip()[-300:])
    squat.close()
    R.eq(our_processes(topo1), [], "port in use (%s): nothing left running" % rid)

# YAML: deep nesting and an alias bomb; qmesh validate, a role and the demo all refuse
yaml_cases = {
    "deep-flow.yaml": ("version: 1\nrequests:\n  total: " + "[" * 40 + "1" + "]" * 40 + "\n", "nesting deeper", "["),
    "deep-block.yaml": ("version: 1\n" + "".join("  " * i + "k%d:\n" % i for i in range(40)) + "  " * 40 + "v\n",
                        "nesting deeper", "k"),
    "alias-bomb.yaml": ("version: 1\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" +
                        "".join("%s: &%s [%s]\n" % (c, c, ",".join(["*" + p] * 9)) for p, c in zip("abcdefgh", "bcdefghi")),
                        "aliases are not allowed", "&"),
    "alias-late.yaml": (text1.replace("quorum: {", "quorum: &q {") + "extra: *q\n", "aliases are not allowed", "&"),
}
for fname, (body_text, fragment, at_char) in yaml_cases.items():
    path = os.path.join(WORK, fname)
    with open(path, "w") as f:
        f.write(body_text)
    lines = body_text.splitlines()
    for cmd in ([QMESH, "validate", path], [os.path.join(BIN, "qmesh-auditor"), "--topology", path, "--id", "AUDITOR"],
                [QMESH, "demo", "--topology", path]):
        t = time.time()
        p = subprocess.run(cmd, env=meshlib.clean_env(), capture_output=True, text=True, timeout=60)
        who = "%s %s" % (os.path.basename(cmd[0]), fname)
        R.check(p.returncode > 0, who + " exits non-zero")
        m = re.search(re.escape(path) + r":(\d+):(\d+): (.*)", p.stderr)
        R.check(m is not None and fragment in m.group(3), "%s says file:line:column: %s (%r)" %
                (who, fragment, p.stderr.strip()[-200:]))
        if m:
            ln, col = int(m.group(1)), int(m.group(2))
            R.check(1 <= ln <= len(lines) and lines[ln - 1][col - 1:col] == at_char,
                    "%s: %d:%d points at a %r" % (who, ln, col, at_char))
        R.check(time.time() - t < 10, who + " answers at once")
    R.eq(our_processes(path), [], fname + ": nothing left running")

shutil.rmtree(WORK, ignore_errors=True)
log("done")
R.finish()
