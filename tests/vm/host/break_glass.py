#!/usr/bin/env python3
"""The break-glass procedure of docs/break-glass.md, as the VM bench runs it
(scenario break-glass, issue 23): the page's own commands, not a copy.

    break_glass.py guest DOC VOLUME_ID
        The responder's commands for a Nitro instance (the ```sh and
        ```sh nitro blocks, in order; ```sh xen and ```sh analyst left out)
        as a POSIX sh script for the guest. The only changes are the
        fill-ins the page marks "# <-": the volume ID (VOL=) and the device
        the page's own grep finds (DEV=, from the guest's $VOLUME_DEV). Any
        other fill-in is an error, so the page cannot grow one this test
        does not handle.
    break_glass.py analyst DOC CAPTURE_DIR MANIFEST_SHA256 IMAGE_SHA256 LIME_SHA256
        The analyst's command (the ```sh analyst block) with its
        placeholders replaced, one argument per line.
"""
import re
import shlex
import sys


def blocks(path):
    """[(tag, [lines])] of the ```sh blocks of a Markdown file."""
    out, tag, lines = [], None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if tag is None:
                if line.startswith("```sh"):
                    tag, lines = ("sh" + line[len("```sh"):]).strip(), []
            elif line.startswith("```"):
                out.append((tag, lines))
                tag = None
            else:
                lines.append(line)
    if tag is not None:
        sys.exit("%s: an unclosed ```sh block" % path)
    return out


def guest(doc, volume_id):
    if not re.fullmatch(r"vol-[0-9a-f]{17}", volume_id):
        sys.exit("bad volume ID %r" % volume_id)
    script = [
        "# The break-glass procedure of docs/break-glass.md (Nitro), extracted by",
        "# tests/vm/host/break_glass.py. Test-only: qemu's NVMe model admitted.",
        "export FV_TEST_ACCEPT_NVME_MODEL='QEMU NVMe Ctrl'",
        "set -ex",
    ]
    seen = set()
    for tag, lines in blocks(doc):
        if tag not in ("sh", "sh nitro"):
            continue
        for line in lines:
            if "# <-" in line:
                name = line.split("=", 1)[0].strip()
                if name == "VOL":
                    line = "VOL=%s" % volume_id
                elif name == "DEV":
                    line = 'DEV=/dev/"$VOLUME_DEV"'
                else:
                    sys.exit("%s: a fill-in this test does not know: %s" % (doc, line))
                seen.add(name)
            script.append(line)
    if seen != {"VOL", "DEV"}:
        sys.exit("%s: expected the fill-ins VOL= and DEV=, found %s" % (doc, sorted(seen)))
    print("\n".join(script))


def analyst(doc, capture_dir, manifest, image, lime):
    cmds = [l for tag, lines in blocks(doc) if tag == "sh analyst" for l in lines
            if l.strip() and not l.strip().startswith("#")]
    if len(cmds) != 1:
        sys.exit("%s: expected one analyst command, found %d" % (doc, len(cmds)))
    values = {"CAPTURE_DIR": capture_dir, "MANIFEST_SHA256": manifest,
              "IMAGE_SHA256": image, "LIME_SHA256": lime}
    args = shlex.split(cmds[0])
    for name in values:
        if args.count(name) != 1:
            sys.exit("%s: the analyst command has %d %s" % (doc, args.count(name), name))
    for a in (values[a] if a in values else a for a in args):
        print(a)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "guest":
        guest(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 7 and sys.argv[1] == "analyst":
        analyst(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
