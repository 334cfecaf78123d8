#!/usr/bin/env python3
"""Canonical form of a LiME stream, for comparing two that differ only in
where records are split (capture splits each RAM range at every 1 GiB
boundary of physical memory; LiME writes one record per range).

    lime_norm.py RANGES_OUT < STREAM > PAYLOAD

Writes the payload bytes (headers removed) to stdout and the records'
ranges, contiguous ones joined, one "start-end" (hex, inclusive) per line,
to RANGES_OUT. Two streams are the same memory exactly when both outputs
are equal.
"""
import struct
import sys

MAGIC = 0x4C694D45


def main():
    src = sys.stdin.buffer
    out = sys.stdout.buffer
    joined = []
    while True:
        hdr = src.read(32)
        if not hdr:
            break
        if len(hdr) != 32:
            raise SystemExit("lime_norm: truncated header")
        magic, version, start, end, _ = struct.unpack("<IIQQ8s", hdr)
        if magic != MAGIC or version != 1 or end < start:
            raise SystemExit("lime_norm: bad header")
        left = end - start + 1
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise SystemExit("lime_norm: stream ends inside a record")
            out.write(chunk)
            left -= len(chunk)
        if joined and joined[-1][1] + 1 == start:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    with open(sys.argv[1], "w") as f:
        for s, e in joined:
            f.write(f"{s:x}-{e:x}\n")


if __name__ == "__main__":
    main()
