#!/usr/bin/python3
"""probe: a tiny grpcurl on an independent gRPC client (Debian's python3-grpcio).

Everything about the server's own services comes from server reflection: the FileDescriptorProto
bytes the server sends go into a private descriptor pool, and message classes are made from it
(google.protobuf.message_factory). Only the public protocols are compiled here, from the
grpc-proto package with python3-grpc-tools: grpc.reflection.v1 and v1alpha, grpc.health.v1.
Nothing of this project's proto/ is imported.

As a library:
    p = Probe("127.0.0.1:8000")
    p.list_services()                      # ["grpc.health.v1.Health", ..., "qmesh.v1.Front"]
    print(p.describe("qmesh.v1.Front"))    # grpcurl-style text
    p.call("qmesh.v1.Front/Submit", '{"payload": "eyJpIjoxfQ=="}', metadata=[("x-domain", "payments")])

As a command (grpcurl's verbs, plaintext only):
    probe.py ADDR list [SERVICE]
    probe.py ADDR describe SYMBOL
    probe.py ADDR call METHOD 'JSON' [-H 'key: value']... [--emit-defaults] [--v1alpha] [--max-time S]
METHOD is "pkg.Service/Method" or "pkg.Service.Method". JSON "-" or "@" reads standard input.
A server-streaming method (grpc.health.v1.Health/Watch) prints each reply as it arrives.
On an error status it prints grpcurl's "ERROR:\n  Code: ...\n  Message: ..." and exits 64 + code.
"""
import argparse
import importlib.util
import json
import os
import sys
import tempfile

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory

GRPC_PROTO_DIR = "/usr/share/grpc-proto"
_PUBLIC = {
    "reflection_v1": "grpc/reflection/v1/reflection.proto",
    "reflection_v1alpha": "grpc/reflection/v1alpha/reflection.proto",
    "health_v1": "grpc/health/v1/health.proto",
}
_modules = {}


def public_pb2(name):
    """The generated module of a public gRPC proto ("reflection_v1", "reflection_v1alpha",
    "health_v1"), compiled from the grpc-proto package by grpc_tools.protoc into a temporary
    directory, once per process. Loaded by path: a package named "grpc" would shadow grpcio."""
    if name in _modules:
        return _modules[name]
    from grpc_tools import protoc
    rel = _PUBLIC[name]
    out = tempfile.mkdtemp(prefix="qmesh-probe-pb-")
    rc = protoc.main(["protoc", "-I" + GRPC_PROTO_DIR, "--python_out=" + out, rel])
    if rc != 0:
        raise RuntimeError("grpc_tools.protoc failed on %s/%s" % (GRPC_PROTO_DIR, rel))
    path = os.path.join(out, rel.replace(".proto", "_pb2.py"))
    spec = importlib.util.spec_from_file_location("qmesh_probe_%s_pb2" % name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _modules[name] = mod
    return mod


def message_class(desc):
    """A message class for |desc|, with whichever API the installed protobuf has."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


class ReflectionError(Exception):
    """An ErrorResponse from the server's reflection service."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (grpc_code_name(code), message))
        self.code = code
        self.message = message


def grpc_code_name(code):
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return str(code)


def _pascal(name):
    """grpcurl prints status codes as Go names: NOT_FOUND -> NotFound."""
    return "".join(w.capitalize() for w in name.split("_")).replace("Ok", "OK")


class Probe:
    """A reflection client for one server address (plaintext)."""

    def __init__(self, addr, version="v1", timeout=10.0):
        self.addr = addr
        self.version = version
        self.timeout = timeout
        self.refl = public_pb2("reflection_" + version)
        self.pool = descriptor_pool.DescriptorPool()
        self._files = set()
        self.channel = grpc.insecure_channel(addr)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the reflection protocol ----
    def reflect(self, requests):
        """Sends |requests| (ServerReflectionRequest messages or dicts of their fields) on one
        ServerReflectionInfo stream and returns the responses, one per request."""
        reqs = [r if not isinstance(r, dict) else self.refl.ServerReflectionRequest(**r) for r in requests]
        info = self.channel.stream_stream(
            "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % self.version,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.refl.ServerReflectionResponse.FromString)
        return list(info(iter(reqs), timeout=self.timeout))

    def _one(self, **field):
        resp = self.reflect([field])
        if len(resp) != 1:
            raise RuntimeError("reflection answered %d messages to one request" % len(resp))
        r = resp[0]
        if r.WhichOneof("message_response") == "error_response":
            raise ReflectionError(r.error_response.error_code, r.error_response.error_message)
        return r

    def list_services(self):
        r = self._one(list_services="*")
        return [s.name for s in r.list_services_response.service]

    def _load(self, resp):
        """Adds the FileDescriptorProtos of a file_descriptor_response to the private pool,
        dependencies first. Returns the FileDescriptorProtos in the order received."""
        blobs = list(resp.file_descriptor_response.file_descriptor_proto)
        fds = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
        pending = {fd.name: (fd, b) for fd, b in zip(fds, blobs) if fd.name not in self._files}
        while pending:
            ready = [n for n, (fd, _) in pending.items()
                     if all(d in self._files or d not in pending for d in fd.dependency)]
            if not ready:
                raise RuntimeError("reflection sent a dependency cycle: %s" % sorted(pending))
            for n in sorted(ready):
                fd, blob = pending.pop(n)
                missing = [d for d in fd.dependency if d not in self._files]
                if missing:  # not in this answer: ask for it by name
                    for d in missing:
                        self.file_by_filename(d)
                self.pool.AddSerializedFile(blob)
                self._files.add(n)
        return fds

    def file_containing_symbol(self, symbol):
        return self._load(self._one(file_containing_symbol=symbol))

    def file_by_filename(self, name):
        return self._load(self._one(file_by_filename=name))

    # ---- descriptors ----
    def find(self, symbol):
        """The descriptor of a service, method, message or enum, fetched by reflection."""
        symbol = symbol.lstrip(".").replace("/", ".")
        finders = (self.pool.FindServiceByName, self.pool.FindMessageTypeByName,
                   self.pool.FindEnumTypeByName, self.pool.FindMethodByName)
        for attempt in range(2):
            for f in finders:
                try:
                    return f(symbol)
                except KeyError:
                    pass
            if attempt == 0:
                try:
                    self.file_containing_symbol(symbol)
                except ReflectionError as first:
                    if "." not in symbol:
                        raise
                    # a method: a server may index only services; ask for the service
                    try:
                        self.file_containing_symbol(symbol.rsplit(".", 1)[0])
                    except ReflectionError:
                        raise first from None
        raise KeyError("symbol %s not in what reflection returned" % symbol)

    def method(self, name):
        """A MethodDescriptor from "pkg.Service/Method", "/pkg.Service/Method" or "pkg.Service.Method"."""
        name = name.lstrip("/")
        svc, _, m = name.replace("/", ".").rpartition(".")
        sd = self.find(svc)
        if not isinstance(sd, descriptor.ServiceDescriptor):
            raise KeyError("%s is not a service" % svc)
        md = sd.methods_by_name.get(m)
        if md is None:
            raise KeyError("service %s has no method %s" % (svc, m))
        return md

    def describe(self, symbol):
        return describe_text(self.find(symbol))

    # ---- calls ----
    def call_message(self, method, request, metadata=None, timeout=None, stream=False):
        """Calls |method| with a message of its input type; returns the reply message. For a
        server-streaming method: the list of replies, or with |stream| the live iterator (cancel()
        ends it). |timeout| None means the probe's; 0 means no deadline."""
        md = self.method(method)
        path = "/%s/%s" % (md.containing_service.full_name, md.name)
        out_cls = message_class(md.output_type)
        ser, de = (lambda m: m.SerializeToString()), out_cls.FromString
        t = self.timeout if timeout is None else (timeout or None)
        if md.server_streaming:
            fn = self.channel.stream_stream if md.client_streaming else self.channel.unary_stream
            arg = iter([request]) if md.client_streaming else request
            it = fn(path, request_serializer=ser, response_deserializer=de)(arg, metadata=metadata, timeout=t)
            return it if stream else list(it)
        fn = self.channel.stream_unary if md.client_streaming else self.channel.unary_unary
        arg = iter([request]) if md.client_streaming else request
        return fn(path, request_serializer=ser, response_deserializer=de)(arg, metadata=metadata, timeout=t)

    def request(self, method, json_text="{}"):
        """A message of |method|'s input type parsed from JSON (json_format.Parse)."""
        md = self.method(method)
        msg = message_class(md.input_type)()
        json_format.Parse(json_text or "{}", msg, descriptor_pool=self.pool)
        return msg

    def call(self, method, json_text="{}", metadata=None, timeout=None, emit_defaults=False):
        """grpcurl's call: JSON in, JSON out (a list of JSON texts for a server stream)."""
        reply = self.call_message(method, self.request(method, json_text), metadata, timeout)
        if isinstance(reply, list):
            return [to_json(m, emit_defaults) for m in reply]
        return to_json(reply, emit_defaults)

    def call_stream(self, method, json_text="{}", metadata=None, timeout=0, emit_defaults=False):
        """A server-streaming call: yields each reply as JSON as it arrives (no deadline by default)."""
        for m in self.call_message(method, self.request(method, json_text), metadata, timeout, stream=True):
            yield to_json(m, emit_defaults)


def to_json(msg, emit_defaults=False):
    return json_format.MessageToJson(msg, including_default_value_fields=emit_defaults, indent=2)


# ---- describe: protobuf source text, as grpcurl prints it ----
_SCALAR = {v: k[len("TYPE_"):].lower() for k, v in descriptor.FieldDescriptor.__dict__.items()
           if k.startswith("TYPE_") and isinstance(v, int)}


def _field_type(f):
    if f.message_type is not None:
        return "." + f.message_type.full_name
    if f.enum_type is not None:
        return "." + f.enum_type.full_name
    return _SCALAR[f.type]


def _message_lines(d, indent=""):
    lines = [indent + "message %s {" % d.name]
    for nested in d.nested_types:
        if nested.GetOptions().map_entry:
            continue
        lines += _message_lines(nested, indent + "  ")
    for e in d.enum_types:
        lines += _enum_lines(e, indent + "  ")
    oneofs_done = set()
    for f in d.fields:
        o = f.containing_oneof
        if o is not None and not (len(o.fields) == 1 and o.name == "_" + f.name):
            if o.name in oneofs_done:
                continue
            oneofs_done.add(o.name)
            lines.append(indent + "  oneof %s {" % o.name)
            for of in o.fields:
                lines.append(indent + "    %s %s = %d;" % (_field_type(of), of.name, of.number))
            lines.append(indent + "  }")
            continue
        mt = f.message_type
        if mt is not None and mt.GetOptions().map_entry:
            k, v = mt.fields_by_name["key"], mt.fields_by_name["value"]
            lines.append(indent + "  map<%s, %s> %s = %d;" % (_field_type(k), _field_type(v), f.name, f.number))
            continue
        label = "repeated " if f.label == descriptor.FieldDescriptor.LABEL_REPEATED else ""
        lines.append(indent + "  %s%s %s = %d;" % (label, _field_type(f), f.name, f.number))
    lines.append(indent + "}")
    return lines


def _enum_lines(e, indent=""):
    return ([indent + "enum %s {" % e.name] + [indent + "  %s = %d;" % (v.name, v.number) for v in e.values]
            + [indent + "}"])


def _method_line(m, indent=""):
    cs = "stream " if m.client_streaming else ""
    ss = "stream " if m.server_streaming else ""
    return indent + "rpc %s ( %s.%s ) returns ( %s.%s );" % (m.name, cs, m.input_type.full_name, ss,
                                                            m.output_type.full_name)


def describe_text(d):
    if isinstance(d, descriptor.ServiceDescriptor):
        return "\n".join(["%s is a service:" % d.full_name, "service %s {" % d.name]
                         + [_method_line(m, "  ") for m in d.methods] + ["}"])
    if isinstance(d, descriptor.MethodDescriptor):
        return "%s is a method:\n%s" % (d.full_name, _method_line(d))
    if isinstance(d, descriptor.Descriptor):
        return "\n".join(["%s is a message:" % d.full_name] + _message_lines(d))
    if isinstance(d, descriptor.EnumDescriptor):
        return "\n".join(["%s is an enum:" % d.full_name] + _enum_lines(d))
    raise TypeError("cannot describe %r" % d)


# ---- command line ----
def _header(h):
    k, sep, v = h.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("header %r is not 'key: value'" % h)
    return k.strip().lower(), v.strip()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="probe.py", description="a tiny grpcurl over server reflection")
    ap.add_argument("addr", help="host:port (plaintext)")
    ap.add_argument("verb", choices=["list", "describe", "call"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("-H", dest="headers", action="append", type=_header, default=[],
                    help="request metadata 'key: value' (repeatable)")
    ap.add_argument("--emit-defaults", action="store_true", help="print fields that hold their default")
    ap.add_argument("--v1alpha", action="store_true", help="use grpc.reflection.v1alpha")
    ap.add_argument("--connect-timeout", type=float, default=10.0, help="deadline of reflection queries (s)")
    ap.add_argument("--max-time", type=float, default=0, help="deadline of the call (s); 0: none, like grpcurl")
    a = ap.parse_args(argv)
    try:
        with Probe(a.addr, "v1alpha" if a.v1alpha else "v1", a.connect_timeout) as p:
            if a.verb == "list":
                if a.args:
                    sd = p.find(a.args[0])
                    for m in sd.methods:
                        print(m.full_name)
                else:
                    for s in p.list_services():
                        print(s)
            elif a.verb == "describe":
                if not a.args:
                    for s in p.list_services():
                        print(p.describe(s))
                for s in a.args:
                    print(p.describe(s))
            else:
                if not a.args:
                    ap.error("call needs METHOD ['JSON']")
                body = a.args[1] if len(a.args) > 1 else "{}"
                if body in ("-", "@"):
                    body = sys.stdin.read()
                md = a.headers or None
                if p.method(a.args[0]).server_streaming:  # print each reply as it comes, like grpcurl
                    for o in p.call_stream(a.args[0], body, md, a.max_time, a.emit_defaults):
                        print(o, flush=True)
                else:
                    print(p.call(a.args[0], body, md, a.max_time, a.emit_defaults))
    except grpc.RpcError as e:
        print("ERROR:\n  Code: %s\n  Message: %s" % (_pascal(e.code().name), e.details()), file=sys.stderr)
        return 64 + e.code().value[0]
    except ReflectionError as e:
        print("Failed to resolve symbol %s: %s" % (json.dumps(a.args[0] if a.args else ""), e), file=sys.stderr)
        return 1
    except (KeyError, json_format.ParseError) as e:
        print("Error: %s" % (e.args[0] if e.args else e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
