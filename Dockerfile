# scry: one headful Chromium on Xvfb, a CDP bridge for agents and noVNC for
# the one-time human login. See docs/deployment.md.
#
#   docker build -t scry .
#   docker run --rm --shm-size=1g -e VNC_PASSWORD=change-me \
#     --security-opt seccomp=deploy/seccomp/scry.json --read-only --tmpfs /tmp \
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
# What a logged-in browser never reads stays out of the image (measured in
# docs/deployment.md): docs (copyright files kept), man and info pages,
# message catalogues, the serif CJK faces (Noto Sans CJK still renders every
# CJK page; fontconfig substitutes it for serif), Mesa's DRI drivers with the
# LLVM and Z3 they load (Xvfb's GLX is their only user; Chromium runs with
# --disable-gpu and brings SwiftShader), and Chromium's Vulkan validation
# layer (a debugging aid). dbus-x11 answers dconf's need for a session bus
# without dbus-user-session, which would pull in systemd.
RUN printf '%s\n' \
      'path-exclude=/usr/share/doc/*' \
      'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' \
      'path-exclude=/usr/share/info/*' \
      'path-exclude=/usr/share/lintian/*' \
      'path-exclude=/usr/share/locale/*' \
      'path-exclude=/usr/share/fonts/opentype/noto/NotoSerifCJK*' \
      'path-exclude=/usr/lib/*-linux-gnu/dri/*' \
      'path-exclude=/usr/lib/*-linux-gnu/libLLVM-*' \
      'path-exclude=/usr/lib/*-linux-gnu/libz3.so*' \
      'path-exclude=/usr/lib/chromium/libVkLayer_khronos_validation.so' \
      >/etc/dpkg/dpkg.cfg.d/scry-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      chromium \
      xvfb \
      x11vnc \
      tini \
      dbus-x11 \
      fonts-liberation \
      fonts-noto-cjk \
      fonts-noto-color-emoji \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && if ldd /usr/lib/chromium/chromium /usr/bin/Xvfb /usr/bin/x11vnc | grep 'not found'; then \
      echo 'a library the browser stack links was excluded above' >&2; exit 1; fi \
 && fc-list :lang=ja family | grep -q 'Noto Sans CJK' \
 && fc-list | grep -q 'Noto Color Emoji'
COPY --from=novnc /tmp/novnc/root/usr/share/novnc/ /usr/share/novnc/
COPY --from=novnc /tmp/novnc/root/usr/share/doc/novnc/copyright /usr/share/doc/novnc/copyright

# uid/gid 1000 is the contract with the volume: PROFILE_DIR must be owned by it
# (Kubernetes: runAsUser/fsGroup 1000). A fresh named volume copies /data's
# owner and mode from the image. /tmp stays empty: scry creates the X socket
# directory there itself (mode 1777), so /tmp can be a tmpfs or an emptyDir
# under a read-only root; a copy of an image directory would arrive with the
# wrong mode (podman copies it up as 1755) and Xvfb could not listen.
RUN groupadd --gid 1000 scry \
 && useradd --uid 1000 --gid 1000 --home-dir /home/scry --create-home \
      --shell /usr/sbin/nologin scry \
 && install -d -o 1000 -g 1000 -m 0700 /data

# Defaults match internal/config. VNC_PASSWORD is deliberately not set here:
# unset and empty mean the same (no password, noVNC is open), and secrets do
# not belong in image metadata. Set it at run time. HOME is under /tmp so the
# image runs with a read-only root filesystem (only /tmp, /dev/shm and /data
# writable): Chromium keeps its crash database and NSS store there, and
# fontconfig its cache; nothing that must outlive the container.
ENV HOME=/tmp/home \
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
