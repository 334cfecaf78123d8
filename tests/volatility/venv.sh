#!/bin/sh
# tests/volatility/venv.sh VERSION: Volatility 3 VERSION from PyPI in a venv
# under ${FV_CACHE:-/var/cache/forensics-volume}/vm, made on first use; prints
# the venv's directory. One recipe for the VM bench (tests/vm/host/scenarios.sh,
# ensure_volatility) and the layer's unit test (tests/volatility/run.sh).
#
# Pinned with it: jsonschema, so Volatility validates every symbol table it
# loads as an analyst's install with it does; zstandard, the decompressor of
# the forensics volume's layer (volatility/fv_zstd_seekable.py), which an
# analyst installs the same way (`pip install zstandard`).
set -eu
version=${1:?usage: tests/volatility/venv.sh VERSION}
JSONSCHEMA_VERSION=4.23.0
ZSTANDARD_VERSION=0.23.0
CACHE=${FV_CACHE:-/var/cache/forensics-volume}
VENV=$CACHE/vm/volatility3-$version-venv
STAMP="volatility3==$version jsonschema==$JSONSCHEMA_VERSION zstandard==$ZSTANDARD_VERSION"

if [ -x "$VENV/bin/vol" ] && [ "$(cat "$VENV/fv-stamp" 2>/dev/null)" = "$STAMP" ]; then
	printf '%s\n' "$VENV"
	exit 0
fi
command -v python3 >/dev/null 2>&1 || {
	echo "venv.sh: error: python3 is needed (apt-get install python3 python3-venv)" >&2
	exit 1
}
echo "venv.sh: installing $STAMP from PyPI into $VENV" >&2
rm -rf "$VENV"
mkdir -p "$CACHE/vm"
python3 -m venv "$VENV" || {
	echo "venv.sh: error: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
	exit 1
}
# shellcheck disable=SC2086 # the stamp is the list of requirements
"$VENV/bin/pip" install -q --disable-pip-version-check $STAMP >&2 || {
	echo "venv.sh: error: pip install $STAMP failed (is PyPI reachable?)" >&2
	exit 1
}
[ -x "$VENV/bin/vol" ] || {
	echo "venv.sh: error: volatility3 installed no 'vol' command" >&2
	exit 1
}
printf '%s\n' "$STAMP" >"$VENV/fv-stamp"
printf '%s\n' "$VENV"
