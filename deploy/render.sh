#!/bin/sh
# deploy/render.sh OUTDIR: render the SSM documents (OUTDIR/ssm, copied onto the
# volume's ssm/ folder by build.sh) and the CloudFormation templates
# (OUTDIR/cloudformation) from deploy/scripts, deploy/documents and
# deploy/cloudformation. Deterministic: the same sources give the same bytes.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
command -v python3 >/dev/null 2>&1 || {
    echo "render: error: python3 is needed (apt-get install python3)" >&2
    exit 1
}
exec python3 -B "$here/tools/render.py" "$@"
