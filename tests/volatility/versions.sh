# shellcheck shell=sh disable=SC2034 # used by the files that source it
# The newest Volatility 3 release the project tests with, and the oldest one
# whose Linux support `capture symbols` tables and the volume's layer
# (volatility/) are checked with (2.11.0 predates the VMCOREINFO stacker: it
# finds the kernel by scanning for swapper/0). Sourced by the VM bench
# (tests/vm/host/scenarios.sh) and tests/volatility/run.sh.
VOLATILITY_VERSION=2.28.2
VOLATILITY_OLDEST=2.11.0
