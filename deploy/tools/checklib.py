"""What every module of check.py shares: the PASS/FAIL harness and the render.

A check is a function decorated with @check(NAME): it passes unless it raises
(CheckFailed from expect() with the reason, or any other exception, reported
with its trace), and appends (NAME, reason or None) to RESULTS, which check.py
counts for its closing "N passed, M failed". Kept in one place so that every
module reports the same way and the count covers them all.
"""

import json
import traceback

import fvdeploy


DEPLOY = fvdeploy.DEPLOY
SHELLS = {"dash": ["dash"], "busybox-ash": ["busybox", "sh"]}
MAX_DOCUMENT_BYTES = fvdeploy.SSM_DOCUMENT_LIMIT
RESULTS = []


class CheckFailed(Exception):
    pass


def check(name):
    def wrap(fn):
        def run(*a, **k):
            try:
                fn(*a, **k)
            except CheckFailed as e:
                RESULTS.append((name, str(e)))
                print("FAIL %s: %s" % (name, e))
                return
            except Exception:  # a crash in a check is a failure, with its trace
                RESULTS.append((name, "crashed"))
                print("FAIL %s: crashed\n%s" % (name, traceback.format_exc()))
                return
            RESULTS.append((name, None))
            print("PASS %s" % name)
        return run
    return wrap


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def rendered():
    return fvdeploy.render_all()


def documents():
    return {name: json.loads(rendered()["ssm/%s.json" % name][0]) for name in fvdeploy.DOCUMENTS_ALL}
