#!/usr/bin/env bash
# Builds every image sluice's Docker files and Docker-based tests use, on a
# machine that reaches no image registry (only Debian's mirror, Maven Central
# and the Go module proxy), and tags each with the name the files use:
#
#   sluice-local/debian:bookworm        debootstrap of Debian's mirror
#   sluice-local/jre:bookworm           + Debian's OpenJDK 17 (runs Kafka 4.1)
#   apache/kafka:4.1.1                  stand-in: Kafka 4.1.1's jars from Maven Central,
#                                       configured from KAFKA_* like the official image
#   golang:1.26                         stand-in: the base + this machine's Go toolchain
#   gcr.io/distroless/static-debian12   stand-in: CA certificates, /etc/passwd, /tmp
#
# An image that exists already (built before, or pulled) is kept: delete it
# to rebuild. Needs a running engine (scripts/docker-engine.sh start).
# Prometheus and Grafana (the compose file's `observe` profile) are not built:
# they cannot be made from these sources in reasonable time.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sluice
base=sluice-local/debian:bookworm
jre=sluice-local/jre:bookworm
label=dev.sluice.stand-in=true
have() { docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "docker-images: $*" >&2; }

if ! have "$base"; then
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  mirror=${mirror:-http://deb.debian.org/debian}
  say "building $base (debootstrap from $mirror)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  security=${mirror%/debian}/debian-security
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$mirror" "$mirror" "$security" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change "LABEL $label" - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! have "$jre"; then
  say "building $jre"
  docker build -q --network=host -t "$jre" - >/dev/null <<DOCKERFILE
FROM $base
LABEL $label
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends default-jre-headless ca-certificates && rm -rf /var/lib/apt/lists/*
DOCKERFILE
fi

kafka=apache/kafka:4.1.1
if ! have "$kafka"; then
  say "building $kafka (stand-in)"
  jars=$cache/kafka-image-4.1.1
  if [ ! -f "$jars/kafka-tools-4.1.1.jar" ]; then
    mkdir -p "$jars"
    mvn -q -f scripts/docker/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jars"
  fi
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp -r scripts/docker/kafka/. "$ctx/"
  mkdir "$ctx/libs"
  cp "$jars"/*.jar "$ctx/libs/"
  docker build -q --network=host --build-arg "JRE=$jre" --label "$label" -t "$kafka" "$ctx" >/dev/null
  rm -rf "$ctx"
  trap - EXIT
fi

# The Dockerfile's build stage: the Go of go.mod (this machine's, which
# scripts/install.sh checked) on the base.
golang=$(sed -n 's/^FROM \(golang:[^ ]*\).*/\1/p' Dockerfile | head -n1)
if [ -n "$golang" ] && ! have "$golang"; then
  say "building $golang (stand-in: $(go env GOVERSION) from $(go env GOROOT))"
  docker build -q --network=host --label "$label" -t sluice-local/go -f - "$(go env GOROOT)" >/dev/null <<DOCKERFILE
FROM $base
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates git && rm -rf /var/lib/apt/lists/*
COPY . /usr/local/go
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local
WORKDIR /go
DOCKERFILE
  # The CAs this machine adds to Debian's (a proxy that inspects TLS to the
  # Go module proxy), so that `go mod download` in a build trusts what this
  # machine's go trusts.
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  mkdir "$ctx/ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  docker build -q --label "$label" -t "$golang" -f - "$ctx" >/dev/null <<DOCKERFILE
FROM sluice-local/go
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
DOCKERFILE
  rm -rf "$ctx"
  trap - EXIT
fi

distroless=gcr.io/distroless/static-debian12
if grep -q "^FROM $distroless" Dockerfile && ! have "$distroless"; then
  say "building $distroless (stand-in)"
  docker build -q --label "$label" -t "$distroless" - >/dev/null <<DOCKERFILE
FROM $jre AS src
RUN mkdir -p /out/etc/ssl/certs /out/tmp && chmod 1777 /out/tmp && \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ && \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/out/etc/passwd && \
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >/out/etc/group
FROM scratch
COPY --from=src /out/ /
DOCKERFILE
fi
say "images ready"
