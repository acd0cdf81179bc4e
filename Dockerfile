# scry: one headful Chromium on Xvfb, a CDP bridge for agents and noVNC for
# the one-time human login. See docs/deployment.md.
#
#   docker build -t scry .
#   docker run --rm --shm-size=1g -e VNC_PASSWORD=change-me \
#     --security-opt seccomp=deploy/seccomp/scry.json \
#     -p 127.0.0.1:6080:6080 -p 127.0.0.1:9222:9222 -v scry-profile:/data scry
#
# GO_IMAGE picks the toolchain image of the build stage. The default is the
# official image; scripts/container-test.sh builds without a registry and passes
# a locally imported image instead (--build-arg GO_IMAGE=localhost/scry-golang:1.26).
# Cache mounts need BuildKit (the default builder since Docker 23) or podman.
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# --- build: a static scry binary ---------------------------------------------
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X github.com/dataplanelabs/scry/internal/app.Version=${VERSION}" \
      -o /out/scry ./cmd/scry

# --- novnc: only the static web client out of Debian's novnc package ---------
# The package depends on nodejs, python3-numpy and websockify, none of which
# scry needs: it serves /usr/share/novnc and bridges the websocket itself.
FROM ${BASE_IMAGE} AS novnc
WORKDIR /tmp/novnc
RUN apt-get update \
 && apt-get download novnc \
 && dpkg-deb -x novnc_*.deb /tmp/novnc/root \
 && test -f /tmp/novnc/root/usr/share/novnc/vnc.html \
 && rm -rf /var/lib/apt/lists/*

# --- runtime: Chromium, Xvfb, x11vnc, tini and fonts; no toolchain ----------
FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      chromium \
      xvfb \
      x11vnc \
      tini \
      fonts-liberation \
      fonts-noto-cjk \
      fonts-noto-color-emoji \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY --from=novnc /tmp/novnc/root/usr/share/novnc/ /usr/share/novnc/
COPY --from=novnc /tmp/novnc/root/usr/share/doc/novnc/copyright /usr/share/doc/novnc/copyright

# uid/gid 1000 is the contract with the volume: PROFILE_DIR must be owned by it
# (Kubernetes: runAsUser/fsGroup 1000). A fresh named volume copies /data's
# owner and mode from the image. Xvfb run as non-root cannot create the X
# socket directory itself, so it exists here, root-owned and sticky like /tmp.
RUN groupadd --gid 1000 scry \
 && useradd --uid 1000 --gid 1000 --home-dir /home/scry --create-home \
      --shell /usr/sbin/nologin scry \
 && install -d -o 1000 -g 1000 -m 0700 /data \
 && install -d -o root -g root -m 1777 /tmp/.X11-unix

# Defaults match internal/config. VNC_PASSWORD is deliberately not set here:
# unset and empty mean the same (no password, noVNC is open), and secrets do
# not belong in image metadata. Set it at run time.
ENV HOME=/home/scry \
    PROFILE_DIR=/data \
    DISPLAY=:99 \
    CDP_PORT=9222 \
    CDP_INTERNAL_PORT=9223 \
    NOVNC_PORT=6080 \
    VNC_PORT=5900 \
    SCREEN=1440x900x24 \
    CHROME_EXTRA_FLAGS=""

LABEL org.opencontainers.image.title="scry" \
      org.opencontainers.image.description="Persistent headful Chromium with a CDP bridge and noVNC" \
      org.opencontainers.image.source="https://github.com/dataplanelabs/scry"

USER 1000:1000
WORKDIR /home/scry
VOLUME /data
# 9222: CDP (agents), 6080: noVNC (the human). VNC 5900 stays inside.
EXPOSE 9222 6080
# tini is PID 1: it reaps orphans and forwards SIGTERM to scry, which closes
# Chromium through CDP so the profile is flushed, then exits 0.
ENTRYPOINT ["tini", "--", "scry"]

# --- final: the runtime plus the binary (last, so code changes rebuild little)
FROM runtime
COPY --from=build /out/scry /usr/local/bin/scry
