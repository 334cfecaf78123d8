#!/usr/bin/env python3
"""Compare a LiME stream's records with the guest's /proc/iomem System RAM.

    lime_check.py MEMORY.lime IOMEM.txt
    lime_check.py --cut DEVICE.img MEMORY.lime   (stream LiME wrote on a raw disk)
    lime_check.py --page MEMORY.lime PFN         (strings in one physical page)

Reads only the 32-byte record headers (seeking over the data), checks the
stream is well formed (magic, version, inclusive ranges, data lengths, no
trailing bytes) and that its ranges are exactly the top-level "System RAM"
ranges of iomem. Prints the ranges; exit 0 when they match, 1 otherwise.
"""
import os
import struct
import sys

MAGIC = 0x4C694D45


def lime_ranges(path):
    size = os.path.getsize(path)
    out = []
    with open(path, "rb") as f:
        off = 0
        while off < size:
            f.seek(off)
            hdr = f.read(32)
            if len(hdr) != 32:
                raise ValueError(f"truncated header at offset {off}")
            magic, version, start, end, _reserved = struct.unpack("<IIQQ8s", hdr)
            if magic != MAGIC or version != 1:
                raise ValueError(f"bad LiME header at offset {off}: magic {magic:#x} version {version}")
            if end < start:
                raise ValueError(f"record at offset {off}: end {end:#x} before start {start:#x}")
            off += 32 + end - start + 1
            if off > size:
                raise ValueError(f"record {start:#x}-{end:#x} runs past the end of the stream")
            out.append((start, end))
    return out


def iomem_ram(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith(" ") or ":" not in line:
                continue
            rng, name = line.split(":", 1)
            if name.strip() != "System RAM":
                continue
            a, b = rng.strip().split("-")
            out.append((int(a, 16), int(b, 16)))
    return out


def cut_stream(device, out):
    """Copy the LiME stream at the start of DEVICE (an image LiME wrote onto a
    raw disk) into OUT, up to the end of its last record."""
    end = 0
    with open(device, "rb") as f:
        while True:
            f.seek(end)
            hdr = f.read(32)
            if len(hdr) < 32:
                break
            magic, version, start, stop, _ = struct.unpack("<IIQQ8s", hdr)
            if magic != MAGIC or version != 1 or stop < start:
                break
            end += 32 + stop - start + 1
        if end == 0:
            raise ValueError(f"no LiME record at the start of {device}")
        f.seek(0)
        with open(out, "wb") as o:
            left = end
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise ValueError(f"{device} ends inside a record")
                o.write(chunk)
                left -= len(chunk)
    print(f"{end} bytes of LiME stream")
    return 0


def page_strings(path, pfn_hex):
    """Printable strings (6+ chars) in the page at physical frame PFN."""
    import re
    phys = int(pfn_hex, 16) * 4096
    off = 0
    with open(path, "rb") as f:
        for start, end in lime_ranges(path):
            if start <= phys <= end:
                f.seek(off + 32 + phys - start)
                page = f.read(4096)
                found = [m.decode() for m in re.findall(rb"[ -~]{6,}", page)]
                zero = page.count(0) == len(page)
                print(f"pfn {pfn_hex}: {'all zero' if zero else ' | '.join(found)[:300]}")
                return 0
            off += 32 + end - start + 1
    print(f"pfn {pfn_hex}: not in any LiME range")
    return 1


def main():
    if sys.argv[1] == "--page":
        return page_strings(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "--cut":
        return cut_stream(sys.argv[2], sys.argv[3])
    lime = lime_ranges(sys.argv[1])
    ram = iomem_ram(sys.argv[2])
    for s, e in lime:
        print(f"lime  {s:#014x}-{e:#014x} ({(e - s + 1) >> 10} KiB)")
    for s, e in ram:
        print(f"iomem {s:#014x}-{e:#014x} ({(e - s + 1) >> 10} KiB)")
    if not ram:
        print("iomem has no System RAM (read as non-root?)")
        return 1
    # capture splits a range into records at every 1 GiB boundary of
    # physical memory (LiME itself writes one per range): join contiguous
    # records, and require every split to fall on such a boundary.
    joined = []
    for s, e in lime:
        if joined and joined[-1][1] + 1 == s:
            if s % (1 << 30) != 0:
                print(f"record at {s:#x} continues the previous one off a 1 GiB boundary")
                return 1
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    if joined != ram:
        print("MISMATCH between LiME records and iomem System RAM")
        return 1
    print(f"{len(joined)} ranges match ({len(lime)} records)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        print(f"lime_check: {e}")
        sys.exit(1)
