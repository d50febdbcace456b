# syntax=docker/dockerfile:1
# qmesh: one image for every role (qmesh-front, -hub, -provider, -auditor, -requester and
# the qmesh tool), as deploy/k8s names it ("qmesh", retagged per overlay).
#
#   docker build -t qmesh:dev .
#
# No container engine runs in the project's development and CI environment, so this file
# is not built there; tests/k8s/run.sh instead checks deploy/runtime-packages.txt (the
# runtime stage's package list) against what the binaries built there link (ldd).

ARG DEBIAN_RELEASE=bookworm

# ---- build: compile and test on Debian 12 ----
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates build-essential cmake pkg-config \
      libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler grpc-proto \
      libyaml-dev libssl-dev libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --parallel \
 && ctest --test-dir /build --label-regex unit --output-on-failure \
 && install -d /out \
 && install -m 0755 /build/bin/qmesh /build/bin/qmesh-* /out/

# ---- runtime: the shared libraries the binaries link, nothing else ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
COPY deploy/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && grep -Ev '^[[:space:]]*(#|$)' /tmp/runtime-packages.txt \
      | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/ /usr/local/bin/
# Mount points: the topology and keys arrive read-only, the auditor's log on a volume.
RUN install -d -m 0755 /etc/qmesh /etc/qmesh/keys /etc/qmesh/secrets \
 && install -d -m 0750 -o 65532 -g 65532 /var/lib/qmesh
# Non-root (the uid the Kubernetes manifests run as); the root filesystem can be read-only:
# only /tmp (an emptyDir in Kubernetes) and /var/lib/qmesh (the auditor) are written.
USER 65532:65532
WORKDIR /tmp
# Without arguments: the whole demo mesh on loopback with the built-in topology.
CMD ["qmesh", "demo"]
