#!/usr/bin/env bash
# `make test`: the whole pytest suite on the first Python version given (make's TEST_PYTHONS, default 3.13 3.10) that
# this machine has, and on each other version the unit tests and one full read through the real command (what
# differs between Pythons is the connector's code, not the fake's or the tests'), each in its own virtualenv and all at
# the same time, then image/build_and_run.sh once.
#
#   bash scripts/test.sh 3.13 3.10
#
# Python X.Y is `pythonX.Y` on PATH if it runs, else pyenv's newest X.Y.*; a version not found is reported and left
# out. Its virtualenv is $VENV (.venv) when $PYTHON (python3) is that version, else .venv-X.Y (made by `make install`).
# Each run's fake Kustomer API gets a port of its own (KUSTOMER_FAKE_PORT: 48585, 48586, ...). Output is streamed
# with a [X.Y] prefix and kept whole in build/test-logs/pytest-X.Y.log; the summary at the end has one line per pytest
# run. Exit status non-zero when a run or the image test fails, or no version was found. PYTEST_ARGS (words) are
# passed to every pytest run, e.g. PYTEST_ARGS="-x unit_tests". Tests marked `once` (long, and about the connector's
# behaviour rather than the Python it runs on) run on the first version found only, in a pytest run of their own
# beside the others (log pytest-X.Y-once.log, its own port): they are a third of the first version's time, and much
# of it is waiting on the clock, so on two cores the whole takes about the longest run rather than their sum.
set -uo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LOGS=build/test-logs
FIRST_PORT=48585
mkdir -p "$LOGS"
LOCK=""
if command -v flock >/dev/null; then LOCK="flock $LOGS/.install.lock"; fi

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

find_python() {  # find_python X.Y: the path of a working Python X.Y, or nothing
    local v=$1 p root
    if p=$(command -v "python$v") && [ "$(version_of "$p")" = "$v" ]; then
        echo "$p"
        return
    fi
    # pyenv's shims only run the versions pyenv has selected; its installs run whatever is selected.
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for p in $(printf '%s\n' "$root"/versions/"$v".*/bin/"python$v" | sort -rV); do
        if [ -x "$p" ] && [ "$(version_of "$p")" = "$v" ]; then
            echo "$p"
            return
        fi
    done
}

run_one() {  # run_one X.Y PYTHON VENV PORT MARKERS [PATHS...]: install the virtualenv, pytest what MARKERS selects
    local v=$1 python=$2 venv=$3 port=$4 markers=$5 got
    shift 5
    echo "python $v: $python, virtualenv $venv, fake Kustomer API on port $port"
    # One install at a time: `pip install -e .` writes source_kustomer.egg-info into the checkout.
    $LOCK "$MAKE" --no-print-directory install VENV="$venv" PYTHON="$python" || return
    got=$(version_of "$venv/bin/python")
    if [ "$got" != "$v" ]; then
        echo "ERROR: $venv has Python $got, not $v: remove it (rm -rf $venv) and run again"
        return 1
    fi
    # shellcheck disable=SC2086  # PYTEST_ARGS: words
    KUSTOMER_FAKE_PORT=$port "$venv/bin/python" -m pytest -m "$markers" ${PYTEST_ARGS:-} "$@"
    got=$?
    if [ "$got" -eq 5 ] && [ "$markers" = "$ONCE" ]; then got=0; fi  # PYTEST_ARGS chose no `once` test
    return "$got"
}

start() {  # start LABEL X.Y PYTHON VENV PORT MARKERS [PATHS...]: run_one in the background, logged as pytest-LABEL.log
    local label=$1 log=$LOGS/pytest-$1.log
    shift
    rm -f "$log" "$log.rc"
    (run_one "$@" 2>&1 | tee "$log" | sed -u "s/^/[$label] /"
     echo "${PIPESTATUS[0]}" >"$log.rc") &
    runs+=("$label")
}

ONCE="once and not image_tests"
OTHER_PYTHONS_RUN="unit_tests integration_tests/test_connector.py"  # what the versions after the first run
default_version=$(version_of "$PYTHON" || true)
versions=()
runs=()
port=$FIRST_PORT
for v in "$@"; do
    python=$(find_python "$v")
    if [ -z "$python" ]; then
        echo "python $v: not on this machine (no working python$v on PATH, none in pyenv): its tests are skipped"
        continue
    fi
    if [ "$v" = "$default_version" ]; then venv=$VENV; else venv=.venv-$v; fi
    if [ "${#versions[@]}" -eq 0 ]; then
        start "$v" "$v" "$python" "$venv" "$port" "not image_tests and not once"
    else
        start "$v" "$v" "$python" "$venv" "$port" "not image_tests and not once" $OTHER_PYTHONS_RUN
    fi
    port=$((port + 1))
    if [ "${#versions[@]}" -eq 0 ]; then
        start "$v-once" "$v" "$python" "$venv" "$port" "$ONCE"
        port=$((port + 1))
    fi
    versions+=("$v")
done
if [ "${#versions[@]}" -eq 0 ]; then
    echo "ERROR: none of Python $* found"
    exit 1
fi
wait

bash image/build_and_run.sh 2>&1 | tee "$LOGS/image.log"
image_rc=${PIPESTATUS[0]}

echo
echo "== make test: summary (full logs in $LOGS/)"
status=$image_rc
for v in "${runs[@]}"; do
    log=$LOGS/pytest-$v.log
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    # pytest's last line, e.g. "==== 2 failed, 522 passed, 9 skipped, 14 deselected in 846.13s (0:14:06) ===="
    line=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)|no tests ran' "$log" | tail -n 1)
    count() { grep -oE "[0-9]+ $1" <<<"$line" | awk '{ n += $1 } END { print n + 0 }'; }
    passed=$(count passed)
    failed=$(($(count failed) + $(count 'errors?')))
    skipped=$(count skipped)
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a run that failed before or outside its tests
    [ "$rc" -eq 0 ] || status=1
    echo "python$v: $passed passed, $failed failed, $skipped skipped (pytest exit $rc)"
done
echo "(python${versions[0]}-once: the tests marked once, which run on python${versions[0]} only)"
tail -n 1 "$LOGS/image.log"
exit "$status"
