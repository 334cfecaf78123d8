"""Print the shell script an SSM Command document runs, with parameters
substituted the way the SSM agent does it.

    python3 deploy/tools/ssm_script.py DOCUMENT.json [Name=Value ...] > script.sh

Each value is checked against the parameter's allowedPattern/allowedValues
(as SSM does before it sends the command), defaults fill in the rest, and
every {{ Name }} in the runCommand lines is replaced. The VM tests (issue 7)
and deploy/check.sh run the rendered documents' scripts through this, so what
they run is exactly what an instance would receive.
"""

import json
import re
import sys

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class ParameterError(Exception):
    """A parameter SSM would refuse."""


def resolve(document, given):
    """Parameter values for a command, as SSM would accept them."""
    declared = document.get("parameters", {})
    values = {}
    for name, value in given.items():
        if name not in declared:
            raise ParameterError("%s is not a parameter of this document" % name)
        values[name] = value
    for name, spec in declared.items():
        if name not in values:
            if "default" not in spec:
                raise ParameterError("%s is required" % name)
            values[name] = spec["default"]
        value = values[name]
        if not isinstance(value, str):
            raise ParameterError("%s must be a string" % name)
        if "allowedValues" in spec and value not in spec["allowedValues"]:
            raise ParameterError("%s=%r is not one of %s" % (name, value, spec["allowedValues"]))
        if "allowedPattern" in spec and not re.search(spec["allowedPattern"], value):
            raise ParameterError("%s=%r does not match %s" % (name, value, spec["allowedPattern"]))
    return values


def shell_step(document, step_name=None):
    steps = [s for s in document.get("mainSteps", []) if s.get("action") == "aws:runShellScript"]
    if step_name:
        steps = [s for s in steps if s.get("name") == step_name]
    if len(steps) != 1:
        raise ParameterError("expected exactly one aws:runShellScript step, found %d" % len(steps))
    return steps[0]


def substitute(text, values):
    def one(match):
        name = match.group(1)
        if name not in values:
            raise ParameterError("{{ %s }} is not a parameter of this document" % name)
        return values[name]

    return PLACEHOLDER.sub(one, text)


def script(document, given, step_name=None):
    """The script text the agent would write and run, and its timeout."""
    values = resolve(document, given)
    step = shell_step(document, step_name)
    lines = step["inputs"]["runCommand"]
    text = substitute("\n".join(lines) + "\n", values)
    timeout = substitute(str(step["inputs"].get("timeoutSeconds", "3600")), values)
    return text, timeout


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        document = json.load(f)
    given = {}
    for arg in argv[2:]:
        name, sep, value = arg.partition("=")
        if not sep:
            sys.stderr.write("ssm_script: expected Name=Value, got %r\n" % arg)
            return 2
        given[name] = value
    try:
        text, _ = script(document, given)
    except (ParameterError, KeyError) as e:
        sys.stderr.write("ssm_script: %s: %s\n" % (argv[1], e))
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
