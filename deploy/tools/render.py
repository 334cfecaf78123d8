"""deploy/render.sh OUTDIR: write the rendered SSM documents and CloudFormation templates."""

import os
import sys

import fvdeploy


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: deploy/render.sh OUTDIR   (e.g. dist/deploy)\n")
        return 2
    try:
        fvdeploy.set_toolkit_sums(os.environ.get(fvdeploy.PIN_VAR, ""))
        written = fvdeploy.write_all(argv[1])
    except (fvdeploy.RenderError, OSError) as e:
        sys.stderr.write("render: error: %s\n" % e)
        return 1
    for rel in written:
        print("%s/%s" % (argv[1].rstrip("/"), rel))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
