#!/usr/bin/env python3
"""test_mux: unary calls carried as frames on one long-lived Mux stream, through a real hub
and auditor, with fake providers (Debian's grpcio) that record what reaches them.

1 a RelayBatch frame on the hub's Mux: the hub relays the batch's bytes unchanged, as a frame
  on one stream to the provider that serves Mux, and as unary EvaluateBatch calls to the two
  that do not (after one UNIMPLEMENTED each, never again); its reply frame carries one OK per
  artifact; a second batch reuses the same streams;
2 a provider that breaks its stream: the frame on it fails like a call on a broken connection
  (the hub counts relays_failed), and the next batch opens a new stream and is delivered;
3 hostile frames: Stats, Health/Check, another service's method, Mux itself and a malformed
  RelayBatch in two messages, each answered by its id with the status its unary call gets,
  and counted as those calls are; malformed MuxFrames bytes end the stream INVALID_ARGUMENT;
  the auditor's Mux carries only the auditor's own methods;
4 the hub and the auditor exit 0 on SIGTERM with a Mux stream open."""
import hashlib
import os
import subprocess
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(__file__))
import meshlib  # noqa: E402
from meshlib import CHANNEL_OPTS, unary  # noqa: E402

import grpc  # noqa: E402

BIN = meshlib.parse_bin()
R = meshlib.Results()
pb = meshlib.pb()
lock = threading.Lock()
seen = {}  # (provider, "mux" | "unary" | "streams") -> list


def note(pid, kind, item):
    with lock:
        seen.setdefault((pid, kind), []).append(item)


def fake_provider(pid, with_mux):
    """A provider that answers every artifact OK and records what arrived and how. With Mux,
    a batch whose first artifact's domain is "break" makes it abort the stream instead."""
    def evaluate_batch(request, context):
        note(pid, "unary", request)
        n = len(pb.ArtifactBatch.FromString(request).artifacts)
        return pb.BatchReply(items=[pb.ItemStatus() for _ in range(n)]).SerializeToString()

    def mux(request_iterator, context):
        note(pid, "streams", 1)
        for msg in request_iterator:
            out = []
            for f in pb.MuxFrames.FromString(msg).frames:
                note(pid, "mux", (f.method, f.payload))
                arts = pb.ArtifactBatch.FromString(f.payload).artifacts
                if arts and pb.Artifact.FromString(arts[0]).domain == "break":
                    context.abort(grpc.StatusCode.UNAVAILABLE, "provider going away")
                reply = pb.BatchReply(items=[pb.ItemStatus() for _ in arts]).SerializeToString()
                out.append(pb.MuxFrame(id=f.id, payload=reply))
            yield pb.MuxFrames(frames=out).SerializeToString()

    handlers = {"EvaluateBatch": grpc.unary_unary_rpc_method_handler(evaluate_batch)}
    if with_mux:
        handlers["Mux"] = grpc.stream_stream_rpc_method_handler(mux)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("qmesh.v1.Provider", handlers)])
    return server


PROVIDERS = ["PROVIDER_A", "PROVIDER_B", "PROVIDER_C"]
KEYS = tempfile.mkdtemp(prefix="qmesh-mux-keys-")
subprocess.run([os.path.join(BIN, "qmesh"), "keygen", "--out", KEYS], check=True, capture_output=True)
text, ports = meshlib.topology_yaml(deadline_ms=60000, extra="keys_dir: %s\n" % KEYS)
topo = meshlib.write_topology(text)
fakes = []
for pid in PROVIDERS:
    s = fake_provider(pid, with_mux=pid == "PROVIDER_A")
    R.check(s.add_insecure_port("127.0.0.1:%d" % ports[pid]) == ports[pid], "%s (fake) listens" % pid)
    s.start()
    fakes.append(s)
procs = meshlib.start_mesh(BIN, topo, ports, meshlib.clean_env(), rids=["AUDITOR", "HUB_A"], stderr=subprocess.DEVNULL)
HUB, AUD = "127.0.0.1:%d" % ports["HUB_A"], "127.0.0.1:%d" % ports["AUDITOR"]


def stats(addr, service):
    s = unary(addr, "/qmesh.v1.%s/Stats" % service, pb.StatsRequest(), pb.RoleStats)
    return {c.name: c.value for c in s.counters}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


def mux(target, path, messages, timeout=20):
    """One Mux stream: sends each message (MuxFrames or raw bytes), half-closes; returns
    (status name, details, the reply frames by id)."""
    frames = {}
    with grpc.insecure_channel(target, options=CHANNEL_OPTS) as ch:
        st = ch.stream_stream(path, request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                              response_deserializer=pb.MuxFrames.FromString)
        try:
            for reply in st(iter(messages), timeout=timeout):
                for f in reply.frames:
                    R.check(f.id not in frames, "%s: one reply frame per id (%d twice)" % (path, f.id))
                    frames[f.id] = f
            return "OK", "", frames
        except grpc.RpcError as e:
            return e.code().name, e.details() or "", frames


def batch(tag, domain="identity", n=2):
    arts = [pb.Artifact(request_repr=hashlib.sha256(b"%s-%d" % (tag.encode(), i)).digest(), domain=domain,
                        verification_context="CTX_ALPHA", sequence=i, front_id="NUVL_A").SerializeToString()
            for i in range(n)]
    # an unknown field (100, varint 1) that a re-encoding hop would drop
    return pb.ArtifactBatch(artifacts=arts).SerializeToString() + bytes([0xa0, 0x06, 0x01])


def relay(frame_id, body):
    code, details, frames = mux(HUB, "/qmesh.v1.Hub/Mux",
                                [pb.MuxFrames(frames=[pb.MuxFrame(id=frame_id, method="/qmesh.v1.Hub/RelayBatch",
                                                                  payload=body)])])
    f = frames.get(frame_id)
    return code, details, f


# ---- 1. relayed as frames where the provider has Mux, as unary calls where it has not ----
b1, b2 = batch("one"), batch("two", n=3)
for i, body in enumerate((b1, b2)):
    code, details, f = relay(100 + i, body)
    R.eq(code, "OK", "RelayBatch frame %d on the hub's Mux: the stream ends OK (%s)" % (i + 1, details))
    R.check(f is not None and f.status == 0, "... its reply frame is OK")
    if f is not None:
        n = len(pb.ArtifactBatch.FromString(body).artifacts)
        R.eq([x.code for x in pb.BatchReply.FromString(f.payload).items], [0] * n, "... one OK per artifact")
R.eq(seen.get(("PROVIDER_A", "mux")), [("/qmesh.v1.Provider/EvaluateBatch", b1), ("/qmesh.v1.Provider/EvaluateBatch", b2)],
     "PROVIDER_A (Mux) got both batches as EvaluateBatch frames, byte-identical")
R.eq(seen.get(("PROVIDER_A", "unary")), None, "PROVIDER_A got no unary call")
R.eq(len(seen.get(("PROVIDER_A", "streams"), [])), 1, "both frames went on one stream")
for pid in ("PROVIDER_B", "PROVIDER_C"):
    R.eq(seen.get((pid, "unary")), [b1, b2], "%s (no Mux) got both batches as unary calls, byte-identical" % pid)

# ---- 2. a provider breaks its stream ----
before = stats(HUB, "Hub")
code, details, f = relay(200, batch("bad", domain="break"))
R.eq(code, "OK", "a batch whose stream the provider breaks: the hub still answers (%s)" % details)
R.check(f is not None and f.status == 0 and all(x.code == 0 for x in pb.BatchReply.FromString(f.payload).items),
        "... delivered by the other two providers: OK per artifact")
R.eq(delta(before, stats(HUB, "Hub")).get("relays_failed"), 2, "the hub counts the frame that died with the stream")
b3 = batch("three")
code, details, f = relay(300, b3)
R.check(code == "OK" and f is not None and f.status == 0, "the next batch is delivered (%s)" % details)
R.eq(len(seen.get(("PROVIDER_A", "streams"), [])), 2, "... on a new stream to PROVIDER_A")
R.eq(seen.get(("PROVIDER_A", "mux"), [])[-1], ("/qmesh.v1.Provider/EvaluateBatch", b3), "... byte-identical")

# ---- 3. hostile frames ----
b = stats(HUB, "Hub")
code, details, frames = mux(HUB, "/qmesh.v1.Hub/Mux", [
    pb.MuxFrames(frames=[pb.MuxFrame(id=1, method="/qmesh.v1.Hub/Stats", payload=pb.StatsRequest().SerializeToString()),
                         pb.MuxFrame(id=2, method="/qmesh.v1.Provider/Evaluate"),
                         pb.MuxFrame(id=3, method="/qmesh.v1.Hub/Mux"),
                         pb.MuxFrame(id=4, method="/qmesh.v1.Hub/RelayBatch", payload=b"\x0a\x10abc")]),
    pb.MuxFrames(frames=[pb.MuxFrame(id=5, method="/grpc.health.v1.Health/Check")])])
R.eq(code, "OK", "a Mux stream of good and bad frames ends OK once each has its reply (%s)" % details)
R.eq(sorted(frames), [1, 2, 3, 4, 5], "every frame is answered, by its id")
if sorted(frames) == [1, 2, 3, 4, 5]:
    R.eq(frames[1].status, 0, "a Stats frame: OK")
    R.check(any(c.name == "rpc_calls" for c in pb.RoleStats.FromString(frames[1].payload).counters),
            "a Stats frame's reply is the hub's RoleStats")
    for i, what in ((2, "another service's method"), (3, "the Mux method itself (streams do not nest)")):
        R.eq(frames[i].status, 12, "a frame naming %s: UNIMPLEMENTED" % what)
        R.check("unknown unary method" in frames[i].message, "its message says why: %r" % frames[i].message)
    R.eq(frames[4].status, 3, "a RelayBatch frame with malformed bytes: INVALID_ARGUMENT, as the unary call")
    R.check("malformed" in frames[4].message, "its message says why: %r" % frames[4].message)
    R.eq((frames[5].status, frames[5].payload), (0, b"\x08\x01"), "a Health/Check frame: SERVING")
dd = delta(b, stats(HUB, "Hub"))
dd.pop("rpc_calls", None)
R.eq(dd, {"refused_invalid": 1, "rpc_unimplemented": 2, "rpc_failed": 3}, "the hub counts frames as the calls they carry")
code, details, _ = mux(HUB, "/qmesh.v1.Hub/Mux", [b"\x0a\x10abc"])
R.eq(code, "INVALID_ARGUMENT", "malformed MuxFrames end the stream: status")
R.check("malformed MuxFrames" in details, "... and say why: %r" % details)
code, _, frames = mux(AUD, "/qmesh.v1.Auditor/Mux", [pb.MuxFrames(frames=[pb.MuxFrame(id=9, method="/qmesh.v1.Hub/Relay")])])
R.eq((code, frames[9].status if 9 in frames else None), ("OK", 12),
     "the auditor's Mux carries only the auditor's own methods (Hub/Relay: UNIMPLEMENTED)")

# ---- 4. SIGTERM with a Mux stream open ----
gate = threading.Event()


def held_open():
    """A request stream that sends nothing and stays open until |gate|."""
    gate.wait(30)
    return
    yield


with grpc.insecure_channel(HUB, options=CHANNEL_OPTS) as ch:
    held = ch.stream_stream("/qmesh.v1.Hub/Mux")(held_open(), timeout=30)
    time.sleep(0.3)  # the stream reaches the hub
    t0 = time.time()
    R.eq(meshlib.stop(procs["HUB_A"]), 0, "the hub exits 0 on SIGTERM with a client's Mux stream open")
    R.check(time.time() - t0 < 5, "... at once, not after a grace period (%.1f s)" % (time.time() - t0))
    try:
        R.eq(list(held), [], "the open stream gets no frame")
        code = "OK"
    except grpc.RpcError as e:
        code = e.code().name
    R.check(code in ("OK", "UNAVAILABLE"), "the open stream ends when the hub stops (%s)" % code)
    gate.set()
R.eq(meshlib.stop(procs["AUDITOR"]), 0, "the auditor exits 0 on SIGTERM")
shutil.rmtree(KEYS, ignore_errors=True)
for s in fakes:
    s.stop(0)
R.finish()
