#!/usr/bin/env python3
"""Parse the guest's console log (the @@FV protocol of guest/scenarios/lib.sh).

    results.py LOG get KEY          print one result (exit 1 if missing)
    results.py LOG block NAME       print a block's output (exit 1 if missing)
    results.py LOG block-rc NAME    print a block's exit status
    results.py LOG fails            print the guest's @@FV-FAIL lines
    results.py LOG json             everything as JSON
"""
import json
import signal
import sys

# Readers like `grep -m1` may close the pipe early: that is not an error.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def parse(path):
    results, blocks, rcs, fails, done = {}, {}, {}, [], None
    current = None
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if current is not None:
                if line.startswith("@@FV-END " + current + " rc="):
                    rcs[current] = int(line.rsplit("rc=", 1)[1])
                    current = None
                else:
                    blocks[current].append(line)
                continue
            if line.startswith("@@FV-BEGIN "):
                current = line.split(" ", 1)[1]
                blocks[current] = []
            elif line.startswith("@@FV-FAIL "):
                fails.append(line[len("@@FV-FAIL "):])
            elif line.startswith("@@FV-DONE rc="):
                done = int(line.split("rc=", 1)[1])
            elif line.startswith("@@FV "):
                parts = line.split(" ", 2)
                results[parts[1]] = parts[2] if len(parts) > 2 else ""
    return {"results": results, "blocks": blocks, "block_rc": rcs, "fails": fails, "done": done}


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    r = parse(sys.argv[1])
    op = sys.argv[2]
    if op == "get":
        v = r["results"].get(sys.argv[3])
        if v is None:
            return 1
        print(v)
    elif op == "block":
        b = r["blocks"].get(sys.argv[3])
        if b is None:
            return 1
        print("\n".join(b))
    elif op == "block-rc":
        v = r["block_rc"].get(sys.argv[3])
        if v is None:
            return 1
        print(v)
    elif op == "fails":
        print("\n".join(r["fails"]))
    elif op == "json":
        print(json.dumps(r, indent=1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
