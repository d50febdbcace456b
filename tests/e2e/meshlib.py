"""meshlib: what the end-to-end tests share: free ports, topology files, the real binaries,
the project's protos compiled with grpc_tools (python3-grpc-tools), the roles started as their
own processes, gRPC calls on channels of their own, and clean teardown."""
import argparse
import atexit
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_procs = []
# Every role of topology_yaml()'s default topology, in the order they are started.
PROVIDERS = ["PROVIDER_A", "PROVIDER_B", "PROVIDER_C"]
MESH = ["AUDITOR"] + PROVIDERS + ["HUB_A", "HUB_B", "NUVL_A", "NUVL_B"]
SERVICE = {"front": "Front", "hub": "Hub", "provider": "Provider", "auditor": "Auditor"}
# Each call on its own channel and subchannel: libgrpc shares subchannels between channels of
# a process, and one that dialled a role before it listened (or after it died) sits in
# reconnect backoff (1 s, 1.6 s, 2.6 s...), which would time the tests, not the mesh.
CHANNEL_OPTS = [("grpc.use_local_subchannel_pool", 1)]


def arg_parser(default_bin=None, **kw):
    """An ArgumentParser with --bin, the directory of the built binaries (required unless
    |default_bin|); a caller adds its own arguments."""
    ap = argparse.ArgumentParser(**kw)
    if default_bin is None:
        ap.add_argument("--bin", required=True, help="directory of the built binaries")
    else:
        ap.add_argument("--bin", default=default_bin, help="directory of the built binaries")
    return ap


def parse_bin():
    """The --bin directory of a test that takes no other argument."""
    return arg_parser().parse_args().bin


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


_pb = None


def pb():
    """The qmesh.v1 message classes, compiled from proto/ at test time."""
    global _pb
    if _pb is None:
        from grpc_tools import protoc
        out = tempfile.mkdtemp(prefix="qmesh-pb-")
        rc = protoc.main(["protoc", "-I" + os.path.join(ROOT, "proto"), "--python_out=" + out,
                          os.path.join(ROOT, "proto", "qmesh", "v1", "qmesh.proto")])
        assert rc == 0, "protoc failed"
        sys.path.insert(0, out)
        _pb = importlib.import_module("qmesh.v1.qmesh_pb2")
    return _pb


def topology_yaml(regions=2, providers=3, quorum=2, ports=None, extra="", secrets=None,
                  deadline_ms=3000, provider_extra=None):
    """A topology on 127.0.0.1 with free ports. Returns (yaml_text, ports dict id->port)."""
    ids = []
    for r in range(regions):
        ids += ["NUVL_%s" % chr(65 + r), "HUB_%s" % chr(65 + r)]
    pids = ["PROVIDER_%s" % chr(65 + i) for i in range(providers)]
    ids += pids + ["AUDITOR"]
    if ports is None:
        ports = dict(zip(ids, free_ports(len(ids))))
    lines = ["version: 1", "quorum: { threshold: %d, deadline_ms: %d }" % (quorum, deadline_ms),
             "regions:"]
    for r in range(regions):
        c = chr(65 + r)
        lines += ["  - name: %s" % c.lower(),
                  "    front: { id: NUVL_%s, listen: \"127.0.0.1:%d\" }" % (c, ports["NUVL_" + c]),
                  "    hub: { id: HUB_%s, listen: \"127.0.0.1:%d\" }" % (c, ports["HUB_" + c])]
    lines.append("providers:")
    for i, p in enumerate(pids):
        secret = (secrets or {}).get(p, "%s_KEY" % chr(65 + i))
        more = (provider_extra or {}).get(p, "")
        lines.append("  - { id: %s, listen: \"127.0.0.1:%d\", score_secret: %s%s }" % (p, ports[p], secret, more))
    lines.append("auditor: { id: AUDITOR, listen: \"127.0.0.1:%d\" }" % ports["AUDITOR"])
    return "\n".join(lines) + "\n" + extra, ports


def write_topology(text):
    fd, path = tempfile.mkstemp(prefix="qmesh-topo-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def spawn(args, env=None, **kw):
    """Starts a process that is killed at exit whatever happens."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(args, env=e, **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=15):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


@atexit.register
def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def processes_with(marker):
    """Live processes whose command line mentions |marker| (a test's own topology file)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def clean_env(**over):
    """The environment without the reference's overrides, plus |over|."""
    keys = ["TOTAL_REQUESTS", "FAILOVER_AT", "QUORUM_THRESHOLD", "EXPECTED_CONTEXT", "RANDOM_SEED",
            "BYZANTINE_PROVIDER", "BYZANTINE_AT", "WORKER_COUNT", "POST_QUEUE_MAX"]
    e = {k: v for k, v in os.environ.items() if k not in keys and not k.endswith("_PORT")}
    e.update({k: str(v) for k, v in over.items()})
    return e


def role_of(rid):
    """The role (front, hub, provider, auditor) of a topology id."""
    return ("front" if rid.startswith("NUVL_") else "hub" if rid.startswith("HUB_")
            else "provider" if rid.startswith("PROVIDER_") else "auditor")


def role_args(bin_dir, topo, rid, drain_ms=0, extra=(), audit_log=None):
    """The command line of role |rid| (the auditor's with --audit-log when |audit_log|)."""
    args = [os.path.join(bin_dir, "qmesh-" + role_of(rid)), "--topology", topo, "--id", rid,
            "--drain-ms", str(drain_ms)] + list(extra)
    if rid == "AUDITOR" and audit_log:
        args += ["--audit-log", audit_log]
    return args


def start_mesh(bin_dir, topo, ports, env, rids=MESH, extra=None, audit_log=None, **kw):
    """Starts each of |rids| as its own process (--drain-ms 0, |extra|[rid] appended), then waits
    until every one is SERVING. Returns {rid: Popen}; |kw| goes to spawn (stdout, stderr...)."""
    procs = {}
    for rid in rids:
        procs[rid] = spawn(role_args(bin_dir, topo, rid, extra=(extra or {}).get(rid, ()), audit_log=audit_log),
                           env=env, **kw)
    for rid in procs:
        wait_serving("127.0.0.1:%d" % ports[rid])
    return procs


def wait_serving(addr, timeout=20):
    """Polls grpc.health.v1.Health/Check until SERVING (raw bytes: status=1 is b'\\x08\\x01'),
    a fresh channel with its own subchannel each attempt (see CHANNEL_OPTS)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with grpc.insecure_channel(addr, options=CHANNEL_OPTS) as ch:
            try:
                if ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=1) == b"\x08\x01":
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.01)
    raise AssertionError("%s never reported SERVING" % addr)


def unary(addr, method, request, reply_cls, metadata=None, timeout=10):
    """One call with the project's message classes, on a channel of its own (see CHANNEL_OPTS)."""
    with grpc.insecure_channel(addr, options=CHANNEL_OPTS) as ch:
        fn = ch.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=reply_cls.FromString)
        return fn(request, metadata=metadata, timeout=timeout)


class Results:
    """Counts checks; prints the closing line ctest and CI read."""
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what, flush=True)

    def eq(self, got, want, what):
        self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


def reflected_methods(addr, service):
    """The method names of |service| as the server's own reflection describes them."""
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="qmesh-refl-")
    rc = protoc.main(["protoc", "-I/usr/share/grpc-proto", "--python_out=" + out,
                      "grpc/reflection/v1/reflection.proto"])
    assert rc == 0
    # loaded by path: a package named "grpc" would shadow grpcio itself
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "qmesh_reflection_v1_pb2", os.path.join(out, "grpc", "reflection", "v1", "reflection_pb2.py"))
    refl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refl)
    with grpc.insecure_channel(addr) as ch:
        info = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=refl.ServerReflectionResponse.FromString)
        resp = next(iter(info(iter([refl.ServerReflectionRequest(file_containing_symbol=service)]), timeout=10)))
    for blob in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for svc in fd.service:
            if "%s.%s" % (fd.package, svc.name) == service:
                return [m.name for m in svc.method]
    return []
