#!/bin/sh
# tests/volatility/run.sh CAPTURE_BINARY: the Volatility 3 layer that reads
# memory.lime.zst in place (volatility/fv_zstd_seekable.py), tested on a
# capture the given `capture` binary makes from a LiME fixture, with the
# oldest and the newest Volatility 3 release the VM bench runs (venvs from
# tests/volatility/venv.sh, cached). Needs root (capture acquires only as
# root). Called by ./build.sh test; a few seconds per version.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
capture=${1:?usage: tests/volatility/run.sh CAPTURE_BINARY}
capture=$(realpath "$capture")
# shellcheck source=tests/volatility/versions.sh
. "$here/versions.sh"
rc=0
for version in "$VOLATILITY_OLDEST" "$VOLATILITY_VERSION"; do
	venv=$("$here/venv.sh" "$version")
	echo "== Volatility 3 $version" >&2
	PYTHONDONTWRITEBYTECODE=1 FV_CAPTURE=$capture "$venv/bin/python" "$here/test_fv_zstd_seekable.py" || rc=1
done
exit $rc
