#!/usr/bin/env bash
# container-test.sh: build the scry image from the repo's Dockerfile with podman
# (no Docker engine, no registry) and test it end to end, the way a user runs it:
#
#   - image: built with podman --isolation=chroot; base images made locally with
#     debootstrap when missing (cached as podman images afterwards)
#   - run: runc, uid 1000, --cap-drop ALL, no-new-privileges, 1g /dev/shm, the
#     shipped seccomp profile, a named volume at /data, ports on 127.0.0.1 only,
#     a read-only root with a tmpfs /tmp (Kubernetes' readOnlyRootFilesystem)
#   - file: URLs: the navigation blocklist is in the profile's preferences,
#     and a tab navigated to file:///data/... is refused
#   - fonts: Chromium renders CJK text with Noto Sans CJK and emoji with Noto
#     Color Emoji (what the image's size cuts must keep)
#   - CDP: /json/version through the published port (URL rewritten), a foreign
#     Host header refused, then chromedp (deploy/containercheck) logs in to a
#     test site: a persistent Set-Cookie
#   - sandbox: every process uid 1000, exactly one browser process, renderers
#     in their own user namespace, no --no-sandbox
#   - graceful stop: podman stop -t 30 exits 0, well within the grace period
#   - persistence: a new container on the same volume (SESSION_COOKIES=off, so
#     it comes from Chromium's flushed profile) still has the cookie
#   - noVNC (on that second container): /, /vnc.html, a VNC login through
#     /websockify (wrong password refused, the right one gets the 1440x900
#     screen), and x11vnc's own port requires scry's private password
#   - the failure Docker users hit: Docker's default seccomp profile (derived
#     from ours by dropping the rules marked "scry:") breaks the sandbox
#
# Needs root (rootful podman). Env knobs: GO_IMAGE, SCRY_TEST_IMAGE,
# SKIP_BUILD=1, SKIP_DOCKER_DEFAULT=1, KEEP=1 (leave containers and volume),
# LOG_DIR (default /tmp/scry-container-test; logs survive the run).
set -Eeuo pipefail # -E: the ERR trap fires inside functions too

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/go/bin

IMAGE=${SCRY_TEST_IMAGE:-localhost/scry:test}
BASE_IMAGE=debian:bookworm-slim
LOCAL_GO_IMAGE=localhost/scry-golang:1.26
GO_IMAGE=${GO_IMAGE:-$LOCAL_GO_IMAGE}
SECCOMP=deploy/seccomp/scry.json
LOG_DIR=${LOG_DIR:-/tmp/scry-container-test}
ID=scrytest-$$
VOLUME=$ID-profile
PAGE=http://127.0.0.1:18080 # the test site, served inside the container
VNC_PW=ct-$RANDOM
COOKIE=v$RANDOM$RANDOM

PODMAN=(podman --runtime runc)
# runc on these hosts needs explicit, lower ulimits (see ENVIRONMENT.md).
# A read-only root as Kubernetes' readOnlyRootFilesystem gives it: /tmp a
# tmpfs (podman's own extra tmpfs mounts on /run and /var/tmp off), /dev/shm
# and the /data volume the only writable places.
RUN_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096
  --shm-size=1g --cap-drop=ALL --security-opt=no-new-privileges
  --read-only --read-only-tmpfs=false --tmpfs /tmp)

START=$SECONDS
STEP=setup
CONTAINERS=()
WORK=$(mktemp -d)
mkdir -p "$LOG_DIR"
declare -A TIMES

exec 9>&2 # fail() reports here even from commands whose stderr is silenced
log() { printf '==> [%3ds] %s\n' "$((SECONDS - START))" "$*"; }
step() {
  STEP=$1
  log "$STEP"
}
fail() {
  printf '\nFAIL [%s]: %s\n' "$STEP" "$*" >&9
  exit 1
}
on_err() {
  printf '\nFAIL [%s]: command failed (line %s, exit %s): %s\n' "$STEP" "$1" "$2" "$3" >&2
}
trap 'on_err $LINENO $? "$BASH_COMMAND"' ERR

cleanup() {
  local rc=$?
  set +e
  trap - ERR
  if ((rc != 0)); then
    for c in "${CONTAINERS[@]}"; do
      podman logs "$c" >"$LOG_DIR/$c.log" 2>&1
      echo "--- last log lines of $c (full log: $LOG_DIR/$c.log)" >&2
      tail -n 25 "$LOG_DIR/$c.log" >&2
    done
  fi
  if [[ ${KEEP:-} == 1 ]]; then
    echo "KEEP=1: left containers ${CONTAINERS[*]} and volume $VOLUME" >&2
  else
    for c in "${CONTAINERS[@]}"; do podman rm -f -v "$c" >/dev/null 2>&1; done
    podman volume rm -f "$VOLUME" >/dev/null 2>&1
  fi
  rm -rf "$WORK"
  if ((rc == 0)); then log "PASS in $((SECONDS - START))s"; fi
}
trap cleanup EXIT

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds or the deadline.
wait_until() {
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.5
  done
}

# free_port: an unused TCP port on 127.0.0.1 below the kernel's ephemeral
# range (32768-60999 here), so another process's outgoing connection or :0
# listener cannot take it between this check and podman's bind (seen once
# under load with 30000-50000).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  fail "no free port found"
}

running() { [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }

cdp_up() { # CONTAINER PORT
  running "$1" || fail "container $1 exited before CDP came up (exit $(podman inspect -f '{{.State.ExitCode}}' "$1"))"
  curl -fsS --max-time 2 "http://127.0.0.1:$2/json/version" >/dev/null
}

# ---------------------------------------------------------------------------
step "tools"
if [[ $(id -u) != 0 ]]; then fail "run as root (rootful podman with runc)"; fi
missing=()
for t in podman runc debootstrap jq curl; do command -v "$t" >/dev/null || missing+=("$t"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap jq curl >/dev/null
fi
command -v go >/dev/null || fail "go is needed on the host to build deploy/containercheck"

# ---------------------------------------------------------------------------
step "base images"
need_go=0
[[ $GO_IMAGE == "$LOCAL_GO_IMAGE" ]] && ! podman image exists "$GO_IMAGE" && need_go=1
if ! podman image exists "$BASE_IMAGE" || ((need_go)); then
  t0=$SECONDS
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$WORK/rootfs
  log "debootstrap bookworm from $mirror (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 ||
    fail "debootstrap failed, see $LOG_DIR/debootstrap.log"
  # Shape it like the official slim image: no cached .debs or lists, and the
  # security and updates suites enabled.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  if ! podman image exists "$BASE_IMAGE"; then
    tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE_IMAGE" \
      >/dev/null 2>"$LOG_DIR/import.log" || fail "podman import $BASE_IMAGE, see $LOG_DIR/import.log"
  fi
  if ((need_go)); then
    # The host's Go toolchain and CA bundle on the same root: a stand-in for
    # golang:1.26-bookworm (the CA bundle matters behind a TLS-inspecting proxy).
    goroot=$(go env GOROOT)
    [[ $goroot == /usr/local/go ]] || fail "expected the host toolchain in /usr/local/go, found $goroot"
    tar -C "$rootfs" -c . -C / usr/local/go etc/ssl/certs/ca-certificates.crt |
      podman import \
        --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' \
        --change 'WORKDIR /go' --change 'CMD ["bash"]' - "$GO_IMAGE" \
        >/dev/null 2>"$LOG_DIR/import.log" || fail "podman import $GO_IMAGE, see $LOG_DIR/import.log"
  fi
  rm -rf "$rootfs"
  TIMES[base]=$((SECONDS - t0))
else
  log "cached: $BASE_IMAGE, $GO_IMAGE"
fi

# ---------------------------------------------------------------------------
step "build image $IMAGE"
t0=$SECONDS
if [[ ${SKIP_BUILD:-} == 1 ]]; then
  podman image exists "$IMAGE" || fail "SKIP_BUILD=1 but $IMAGE does not exist"
else
  podman build --isolation=chroot --network=host \
    --build-arg GO_IMAGE="$GO_IMAGE" -t "$IMAGE" . >"$LOG_DIR/build.log" 2>&1 ||
    { tail -n 30 "$LOG_DIR/build.log" >&2; fail "podman build failed, see $LOG_DIR/build.log"; }
fi
TIMES[build]=$((SECONDS - t0))

step "build deploy/containercheck"
(cd deploy && CGO_ENABLED=0 go build -o "$WORK/containercheck" ./containercheck) ||
  fail "go build ./containercheck in deploy/"
CHECK=$WORK/containercheck

CDP_HOST_PORT=$(free_port)
NOVNC_HOST_PORT=$(free_port)
[[ $CDP_HOST_PORT != "$NOVNC_HOST_PORT" ]] || NOVNC_HOST_PORT=$(free_port)
CDP=http://127.0.0.1:$CDP_HOST_PORT

# run_scry NAME [extra podman run flags...]: start scry like a user would.
run_scry() {
  local name=$1
  shift
  CONTAINERS+=("$name")
  "${PODMAN[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" "$@" \
    -e VNC_PASSWORD="$VNC_PW" "$IMAGE" >/dev/null
}

# start_site CONTAINER: copy containercheck in and serve the test site there.
start_site() {
  podman cp "$CHECK" "$1:/tmp/containercheck"
  podman exec -d "$1" /tmp/containercheck serve -addr "${PAGE#http://}" >/dev/null
  wait_until 20 "test site in $1" podman exec "$1" /tmp/containercheck get -url "$PAGE/echo" -timeout 2s
}

# The container's log is read to the end before anything filters it: a
# "podman logs | grep -q" pipeline under pipefail fails at random, because grep
# exits at the first match and podman, still writing, dies of SIGPIPE.

# logs_have CONTAINER REGEX: does the container's log match?
logs_have() {
  local out
  out=$(podman logs "$1" 2>&1)
  grep -q -- "$2" <<<"$out"
}

# logs_line CONTAINER REGEX prints the first matching log line (or nothing).
logs_line() {
  local out
  out=$(podman logs "$1" 2>&1)
  grep -m1 -- "$2" <<<"$out" || true
}

# graceful_stop CONTAINER: SIGTERM, then scry must close Chromium and exit 0.
graceful_stop() {
  local t0=$SECONDS code
  podman stop -t 30 "$1" >/dev/null
  TIMES[stop]=$((SECONDS - t0))
  code=$(podman inspect -f '{{.State.ExitCode}}' "$1")
  [[ $code == 0 ]] || fail "scry exited $code after SIGTERM, want 0"
  ((TIMES[stop] < 25)) || fail "stop took ${TIMES[stop]}s: scry must finish within ~20s of SIGTERM"
  logs_have "$1" "chromium closed cleanly" ||
    fail "scry exited 0 but did not log \"chromium closed cleanly\": Browser.close did not finish"
  log "stopped in ${TIMES[stop]}s, exit 0, Chromium closed through CDP"
}

# ---------------------------------------------------------------------------
step "run A: shipped seccomp profile, named volume, ports on 127.0.0.1"
A=$ID-a
run_scry "$A" --security-opt seccomp="$SECCOMP" -v "$VOLUME:/data" \
  -p "127.0.0.1:$CDP_HOST_PORT:9222" -p "127.0.0.1:$NOVNC_HOST_PORT:6080"
t0=$SECONDS
wait_until 120 "CDP /json/version on $CDP" cdp_up "$A" "$CDP_HOST_PORT"
TIMES[ready]=$((SECONDS - t0))
curl -fsS "$CDP/json/version" | jq -e --arg h "127.0.0.1:$CDP_HOST_PORT" \
  '.webSocketDebuggerUrl | startswith("ws://" + $h + "/devtools/browser/")' >/dev/null ||
  fail "webSocketDebuggerUrl is not rewritten to 127.0.0.1:$CDP_HOST_PORT: $(curl -sS "$CDP/json/version")"
log "CDP ready in ${TIMES[ready]}s"

step "read-only root; file: URLs blocked in the profile's preferences"
[[ $(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$A") == true ]] || fail "container $A does not run with a read-only root"
if podman exec "$A" sh -c 'touch /usr/.scry-rw-probe' 2>/dev/null; then fail "the root filesystem of $A is writable"; fi
logs_have "$A" "navigation blocklist set.*file_urls=blocked" || fail "scry did not log the navigation blocklist"
podman exec "$A" cat /data/Default/Preferences | jq -e '.policy.url_blocklist | index("file://*") != null' >/dev/null ||
  fail "/data/Default/Preferences does not block file: URLs"

step "CDP refuses a DNS-rebinding Host header"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Host: rebind.example:9222' "$CDP/json/version")
[[ $code != 200 ]] || fail "Host: rebind.example was answered 200; only IP literals, localhost and CDP_ALLOWED_HOSTS may be"

step "chromedp logs in to a test site (persistent cookie)"
start_site "$A"
"$CHECK" set -cdp "$CDP" -page "$PAGE" -value "$COOKIE" || fail "containercheck set"

step "CJK and emoji render with the image's fonts; a tab cannot open file:"
"$CHECK" fonts -cdp "$CDP" -page "$PAGE" || fail "containercheck fonts"
"$CHECK" fileurl -cdp "$CDP" -url file:///data/Default/Preferences || fail "containercheck fileurl"

step "processes: uid 1000, one browser, sandboxed renderers"
browsers=0 renderers=0 browser_ns=
declare -a renderer_ns=()
while read -r hpid; do
  # A process may exit between podman top and here (a spare renderer).
  uid=$(awk '/^Uid:/{print $2}' "/proc/$hpid/status" 2>/dev/null) || continue
  cmd=$(tr '\0' ' ' <"/proc/$hpid/cmdline" 2>/dev/null) || continue
  [[ -n $uid && -n $cmd ]] || continue
  [[ $uid == 1000 ]] || fail "process runs as uid $uid, not 1000: $cmd"
  exe=${cmd%% *}
  [[ $exe == */chromium ]] || continue
  [[ $cmd != *--no-sandbox* ]] || fail "Chromium runs with --no-sandbox: $cmd"
  case $cmd in
  *--type=renderer*)
    renderers=$((renderers + 1))
    renderer_ns+=("$(readlink "/proc/$hpid/ns/user" 2>/dev/null || echo gone)")
    ;;
  *--type=*) ;;
  *)
    browsers=$((browsers + 1))
    browser_ns=$(readlink "/proc/$hpid/ns/user")
    ;;
  esac
done < <(podman top "$A" hpid | tail -n +2)
((browsers == 1)) || fail "want exactly one Chromium browser process, found $browsers"
((renderers > 0)) || fail "no renderer process found"
for ns in "${renderer_ns[@]}"; do
  [[ $ns != gone ]] || continue
  [[ $ns != "$browser_ns" ]] || fail "a renderer shares the browser's user namespace $ns: the sandbox is off"
done
log "1 browser in $browser_ns, $renderers renderers in ${renderer_ns[0]}"

step "graceful stop of A"
graceful_stop "$A"

step "run B on the same volume: the login survived"
# SESSION_COOKIES=off: the cookie must come from the profile Chromium
# flushed at the graceful close, not from scry's own snapshot.
B=$ID-b
run_scry "$B" --security-opt seccomp="$SECCOMP" -v "$VOLUME:/data" -e SESSION_COOKIES=off \
  -p "127.0.0.1:$CDP_HOST_PORT:9222" -p "127.0.0.1:$NOVNC_HOST_PORT:6080"
wait_until 120 "CDP of B" cdp_up "$B" "$CDP_HOST_PORT"
start_site "$B"
"$CHECK" verify -cdp "$CDP" -page "$PAGE" -value "$COOKIE" || fail "containercheck verify"

step "noVNC on B: /, /vnc.html, a VNC login through /websockify, x11vnc itself closed"
check_novnc() {
  local base=http://127.0.0.1:$NOVNC_HOST_PORT path body frame
  for path in / /vnc.html; do
    body=$(curl -fsS --max-time 5 "$base$path") || fail "GET $path on the noVNC port"
    grep -qi '<html' <<<"$body" || fail "GET $path: not an HTML page"
  done
  # The raw websocket upgrade; the first binary frame must carry the VNC
  # server's "RFB 003.00x" banner, proving the bridge reaches x11vnc.
  frame=$(curl -sS --http1.1 --max-time 3 -N \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H "Sec-WebSocket-Key: $(head -c 16 /dev/urandom | base64)" -H 'Sec-WebSocket-Protocol: binary' \
    "$base/websockify" 2>/dev/null | head -c 64 | tr -c '[:print:]' '.' || true)
  [[ $frame == *"RFB 003.00"* ]] || fail "/websockify did not answer with an RFB banner (got: ${frame:-nothing})"
  # A wrong password refused, the right one reaches x11vnc: the screen's
  # size and a framebuffer update.
  VNC_PASSWORD=$VNC_PW "$CHECK" vnc -url "ws://127.0.0.1:$NOVNC_HOST_PORT/websockify" -screen 1440x900 -timeout 30s ||
    fail "VNC login through /websockify"
  # x11vnc's own port, from inside the container (a web page in the
  # browser could reach it): never open, even though VNC_PASSWORD is scry's.
  podman exec "$B" /tmp/containercheck vnc-server -addr 127.0.0.1:5900 -timeout 10s ||
    fail "x11vnc's port 5900 inside the container is open"
}
wait_until 30 "noVNC port $NOVNC_HOST_PORT" curl -fsS --max-time 2 "http://127.0.0.1:$NOVNC_HOST_PORT/vnc.html"
check_novnc

step "graceful stop of B"
graceful_stop "$B"

# ---------------------------------------------------------------------------
if [[ ${SKIP_DOCKER_DEFAULT:-} != 1 ]]; then
  step "Docker's default seccomp profile breaks the sandbox"
  jq 'del(.syscalls[] | select((.comment // "") | startswith("scry:")))' "$SECCOMP" >"$WORK/docker-default.json"
  C=$ID-dockerdefault
  run_scry "$C" --security-opt seccomp="$WORK/docker-default.json"
  # scry refuses in one line that names the three ways out: its preflight
  # probes user namespaces before Chromium starts (and, if Chromium still
  # dies with "No usable sandbox", scry says the same after it).
  explained() { logs_have "$C" "sandbox.*deploy/seccomp/scry.json.*--no-sandbox"; }
  wait_until 60 "scry's one-line explanation of the sandbox failure" explained
  code=$(podman wait "$C" 2>/dev/null || echo 0)
  [[ $code != 0 ]] || fail "scry exited 0 although Chromium's sandbox cannot start"
  line=$(logs_line "$C" "sandbox.*deploy/seccomp/scry.json")
  echo "${line:0:200}"
  podman rm -f -v "$C" >/dev/null
fi

# ---------------------------------------------------------------------------
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
log "image $IMAGE: $((size / 1000 / 1000)) MB"
log "timings (s): base images ${TIMES[base]:-cached}, image build ${TIMES[build]}, first CDP ready ${TIMES[ready]}, last graceful stop ${TIMES[stop]}"
