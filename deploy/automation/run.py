"""Run the rendered Forensics-CaptureInstanceMemory once, against moto, with
a chosen instance backend.

    deploy/automation.sh run [--backend FILE.py:CLASS] [--backend-arg K=V ...]
                             [--param Name=Value ...] [--instance-type TYPE]
                             [--cancel-during STEP] [--json OUT.json]

The default backend is the scripted one with every command succeeding. A
backend from FILE.py:CLASS is constructed with the --backend-arg pairs as
keyword arguments (strings). Exit 0 when the execution ends Success, 1
otherwise, 2 on a usage or engine error. --json writes the execution
(status, outputs, steps, failure message, world IDs) for a driver to check.

From Python (the VM scenario): `execute(backend, parameters=None, **world)`
returns (execution, world) with the world still running; call world.stop().
"""

import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "tools"))

import accounts  # noqa: E402
import backend as backend_mod  # noqa: E402
import engine  # noqa: E402
import fvdeploy  # noqa: E402
import world as world_mod  # noqa: E402

RUNBOOK = "Forensics-CaptureInstanceMemory"


def rendered_documents():
    """Every document exactly as deploy/render.sh writes it (same bytes)."""
    return {name: json.loads(fvdeploy.dump_json(fvdeploy.render_document(name)))
            for name in fvdeploy.DOCUMENTS_ALL}


def execute(backend, parameters=None, faults=None, execution_id=None, **world_options):
    """One execution in a fresh moto world. Returns (execution, world); the
    world keeps running for inspection until world.stop()."""
    docs = rendered_documents()
    # Two accounts: the member the runbook runs in, the security account
    # that takes custody of the evidence (accounts.py).
    world = accounts.SecurityWorld(**world_options).start()
    try:
        world.create_documents(docs)
        commands = {k: v for k, v in docs.items() if k != RUNBOOK}
        ex = engine.Execution(docs[RUNBOOK], world.parameters(**(parameters or {})), world.session, backend,
                              commands, world_mod.ACCOUNT, world.region,
                              execution_id=execution_id or "00000000-0000-4000-8000-000000000001",
                              faults=faults)
        ex.world = world
        ex.run()
    except BaseException:
        world.stop()
        raise
    return ex, world


def load_backend(spec, args):
    path, _, cls = spec.rpartition(":")
    if not path or not cls:
        raise SystemExit("run: --backend wants FILE.py:CLASS, got %r" % spec)
    module_spec = importlib.util.spec_from_file_location("fv_backend", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, cls)(**args)


class CancelDuring:
    """Faults object cancelling the execution while one step runs."""

    def __init__(self, step):
        self.step = step
        self.fired = False

    def cancel_during(self, name):
        if name == self.step and not self.fired:
            self.fired = True
            return True
        return False

    def enter(self, name, ex):
        pass

    def leave(self, name, ex):
        pass


def main(argv):
    ap = argparse.ArgumentParser(prog="deploy/automation.sh run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend")
    ap.add_argument("--backend-arg", action="append", default=[])
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--instance-type", default="r6i.large")
    ap.add_argument("--cancel-during")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    params = dict(p.split("=", 1) for p in a.param)
    bargs = dict(p.split("=", 1) for p in a.backend_arg)
    backend = load_backend(a.backend, bargs) if a.backend else backend_mod.ScriptedBackend()
    try:
        ex, world = execute(backend, params, faults=CancelDuring(a.cancel_during) if a.cancel_during else None,
                            instance_type=a.instance_type)
    except engine.EngineError as e:
        sys.stderr.write("run: engine error: %s\n" % e)
        return 2
    try:
        print(engine.report(ex))
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"status": ex.status, "failure": ex.failure_message, "outputs": ex.outputs,
                           "steps": ex.steps, "instance_id": world.instance_id,
                           "pending_commands": ex.pending_commands,
                           "volumes": world.volumes_of(ex.execution_id)}, f, indent=2, default=str)
    finally:
        world.stop()
    return 0 if ex.status == "Success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
