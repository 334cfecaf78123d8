#!/bin/sh
# deploy/check.sh [--volume-ssm DIR]: validate everything under deploy/ offline
# (called by ./build.sh test). Installs cfn-lint from PyPI into a venv under
# ${FV_CACHE:-/var/cache/forensics-volume}/venv on first use, then runs
# deploy/tools/check.py (rendering, document structure, runbook failure
# paths, shellcheck, stage-0 on fixture sysfs trees under dash and busybox
# ash, capture/unmount scripts, publish.sh --dry-run, cfn-lint). It closes
# with "N passed, M failed" and exits non-zero on any failure.
# --volume-ssm DIR also checks that the volume's ssm/ folder equals a fresh
# render (e.g. dist/volume/ssm).
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
CACHE=${FV_CACHE:-/var/cache/forensics-volume}
VENV=$CACHE/venv
CFN_LINT_VERSION=1.51.0

missing=''
for tool in python3 shellcheck dash busybox; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "check: error: missing:$missing (apt-get install python3 python3-venv shellcheck dash busybox-static)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

cfn_lint=$VENV/bin/cfn-lint
if ! { [ -x "$cfn_lint" ] && "$cfn_lint" --version 2>/dev/null | grep -q " $CFN_LINT_VERSION\$"; }; then
    echo "check: installing cfn-lint $CFN_LINT_VERSION into $VENV"
    if ! { mkdir -p "$CACHE" && python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"; }; then
        echo "check: error: could not install cfn-lint into $VENV (is python3-venv installed, is PyPI reachable?)" >&2
        cfn_lint=''
    fi
fi

cd "$here/tools"
exec env PYTHONDONTWRITEBYTECODE=1 python3 check.py ${cfn_lint:+--cfn-lint "$cfn_lint"} "$@"
