# duplex serve in a small image: one static binary, no package manager,
# running as an unprivileged user.
#
#   docker build -t duplex .
#   docker run --rm -p 8080:8080 -e DUPLEX_TOKENS=change-me duplex
#
# Build a released version from the module proxy instead of this
# directory with --build-arg DUPLEX_VERSION=v0.1.0: its `duplex version`
# then names the module version. docs/deploy.md has the details.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
ARG DUPLEX_VERSION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that needs no libc in the final image.
# -trimpath: no build paths in the binary.
RUN set -eu; \
    export CGO_ENABLED=0; \
    if [ -n "$DUPLEX_VERSION" ]; then \
      GOBIN=/out go install -trimpath -ldflags='-s -w' "github.com/duplexws/duplex/cmd/duplex@$DUPLEX_VERSION"; \
    else \
      go build -trimpath -ldflags='-s -w' -o /out/duplex ./cmd/duplex; \
    fi; \
    /out/duplex serve --help >/dev/null; \
    mkdir -p /out/home/.config

# Static busybox, for the health check only (see HEALTHCHECK below).
FROM busybox:1.37-musl AS busybox

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/duplex /usr/local/bin/duplex
COPY --from=busybox /bin/busybox /bin/busybox
# A home the server may write to: with no credential configured, duplex
# serve generates a development token and may keep it under
# $HOME/.config. Production sets DUPLEX_TOKENS, DUPLEX_JWT_SECRET or
# another credential, and then nothing is written.
COPY --from=build --chown=65532:65532 /out/home /home/duplex
ENV HOME=/home/duplex \
    DUPLEX_ADDR=:8080 \
    GODEBUG=http2xconnect=1
# GODEBUG above: Go's HTTP/2 server offers WebSockets over HTTP/2 (RFC
# 8441) only with this setting at process start; duplex serve would
# otherwise re-execute itself once to add it.

# 65532: the conventional "nonroot" user of distroless images; it owns
# nothing in the image but its home.
USER 65532:65532
EXPOSE 8080

# The image has no curl and no shell on its path. duplex has no
# plain-HTTP probe command (`duplex connect` needs a WebSocket and
# credentials), so the check is busybox's wget, a static binary of about
# 1 MiB, run without a shell: 200 from /healthz is healthy; 503 (shutting
# down, or the broker unavailable) and no answer are not, and --timeout
# bounds a check that hangs. It probes the DUPLEX_ADDR set above: change
# both together. With --tls-cert inside the container, probe from
# outside instead: this wget has no TLS.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]

ENTRYPOINT ["/usr/local/bin/duplex"]
CMD ["serve"]
