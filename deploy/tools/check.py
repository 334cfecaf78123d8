"""Offline validation of everything under deploy/ (run by deploy/check.sh).

    python3 deploy/tools/check.py [--cfn-lint PATH] [--volume-ssm DIR]

Checks, each reported as PASS or FAIL with the reason, closing with
"N passed, M failed" (exit 1 on any failure):
  - rendering is deterministic and every rendered script equals its source;
  - SSM documents: schema, size, every parameter constrained, the patterns
    refuse shell metacharacters and accept good values, step inputs present;
  - the runbook: steps and documents it names exist, every failure path before
    the capture reaches clean-up, no path after the capture deletes the
    volume before the evidence snapshot is complete; plan.py's arithmetic;
  - shellcheck on every script, including those extracted from the documents;
  - stage-0 against fixture sysfs trees under dash and busybox ash;
  - capture.sh's parameter checks and time-budget watchdog, unmount.sh;
  - publish.sh --dry-run output, and its refusals;
  - cfn-lint on both CloudFormation templates.

The checks live in modules beside this one, by what they check (this file
only runs them, in this order, and counts): checklib.py (the PASS/FAIL
harness), check_documents.py (rendering, SSM documents), check_runbook.py
(the runbook, plan.py), check_scripts.py (shellcheck; capture.sh, unmount.sh,
stop.sh), check_stage0.py (stage-0), check_publish.py (publish.sh) and
check_cloudformation.py (cfn-lint, least privilege, portability).
"""

import argparse
import shutil
import sys

from check_cloudformation import check_cfn_lint, check_cfn_portable, check_least_privilege
from check_documents import (check_command_steps, check_deterministic, check_document_shape, check_document_size,
                             check_matches_source, check_patterns, check_volume_copy)
from check_publish import check_publish_dry_run, check_publish_errors, check_publish_help_and_organization
from check_runbook import (check_fleet, check_plan, check_plan_handler, check_runbook_failure_paths, check_runbook_hardening,
                           check_runbook_references)
from check_scripts import check_shellcheck, make_capture_checks, make_pin_checks
from check_stage0 import (STAGE0_CASES, check_stage0_injection, check_stage0_self_validation, make_root_stage0_check,
                          make_stage0_check)
from checklib import RESULTS, SHELLS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cfn-lint")
    ap.add_argument("--volume-ssm")
    args = ap.parse_args()
    missing = [t for t in ("shellcheck", "dash", "busybox") if shutil.which(t) is None]
    if missing:
        print("FAIL tools: %s not installed (apt-get install shellcheck dash busybox-static)" % ", ".join(missing))
        RESULTS.append(("tools", "missing"))
    checks = [check_deterministic, check_matches_source, check_document_size]
    if args.volume_ssm:
        checks.append(lambda: check_volume_copy(args.volume_ssm))
    else:
        print("note: no --volume-ssm DIR given: the volume's copy of the documents is not compared")
    checks += [check_document_shape, check_patterns, check_command_steps, check_runbook_references,
              check_runbook_failure_paths, check_runbook_hardening, check_plan, check_plan_handler, check_fleet, check_shellcheck, check_stage0_injection,
              check_stage0_self_validation]
    for shell in SHELLS:
        checks += [make_stage0_check(shell, case) for case in STAGE0_CASES]
        checks.append(make_root_stage0_check(shell))
        checks += make_capture_checks(shell)
        checks += make_pin_checks(shell)
    checks += [check_publish_dry_run, check_publish_errors, check_publish_help_and_organization, lambda: check_cfn_lint(args.cfn_lint), check_cfn_portable,
               check_least_privilege]
    for c in checks:
        c()
    failed = sum(1 for _, e in RESULTS if e)
    print("%d passed, %d failed" % (len(RESULTS) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
