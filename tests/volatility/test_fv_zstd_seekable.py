"""The Volatility 3 layer volatility/fv_zstd_seekable.py on a real capture.

A LiME fixture (random payloads, zero pages, a planted Linux banner across a
frame boundary) is captured by the real `capture` binary (FV_CAPTURE) into a
`memory.lime.zst`; then:

- Volatility's own stacking (every stacker it ships, in its order, plus ours)
  puts the LiME layer on our layer on the file, and both read exactly the
  fixture's bytes, at random offsets across frame boundaries;
- damage is an error naming the frame (a flipped byte), or the file is not
  taken (cut, appended to, a lying seek table), never wrong data;
- `vol -p volatility -f memory.lime.zst banners.Banners` finds the planted
  banner, and without `-p` it does not (so the layer is what reads it);
- the same directory offers `fv.hidden_modules` (volatility/fv/).

Run by tests/volatility/run.sh in the venv of tests/volatility/venv.sh.
"""

import glob
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "volatility"
sys.path.insert(0, str(PLUGIN_DIR))

import fv_zstd_seekable as fv  # noqa: E402
import volatility3  # noqa: E402
from volatility3 import framework  # noqa: E402
from volatility3.framework import contexts, interfaces  # noqa: E402
from volatility3.framework.automagic import stacker  # noqa: E402
from volatility3.framework.layers import lime, physical  # noqa: E402

BANNER = b"Linux version 6.1.0-fvtest-amd64 (fv@layer.test) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC\n\x00"
RANGES = [(0x1000, 0x9FFFF), (0x100000, 0x3FFFFF), (0x100000000, 0x1000FFFFF)]
FRAME = 1 << 20


def lime_fixture():
    rng = random.Random(23)
    out = bytearray()
    for start, end in RANGES:
        out += struct.pack("<IIQQQ", 0x4C694D45, 1, start, end, 0)
        n = end - start + 1
        payload = bytearray(rng.randbytes(n))
        payload[0x20000:0x40000] = bytes(0x20000)  # zero pages
        out += payload
    # The banner straddles the boundary of the second and third frames.
    at = 2 * FRAME - 40
    out[at : at + len(BANNER)] = BANNER
    return bytes(out)


def capture_into(tmp, stream):
    binary = os.environ.get("FV_CAPTURE")
    if not binary or not os.access(binary, os.X_OK):
        raise SystemExit("FV_CAPTURE must name the capture binary (tests/volatility/run.sh sets it)")
    src = os.path.join(tmp, "in.lime")
    with open(src, "wb") as f:
        f.write(stream)
    out = os.path.join(tmp, "captures")
    os.mkdir(out)
    r = subprocess.run(
        [binary, "--source", f"lime:{src}", "--output", out, "--allow-any-output", "--no-imds", "--quiet"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise AssertionError(f"capture failed ({r.returncode}): {r.stderr}")
    dirs = [d for d in glob.glob(os.path.join(out, "*")) if os.path.isfile(os.path.join(d, "manifest.json"))]
    assert len(dirs) == 1, dirs
    return os.path.join(dirs[0], "memory.lime.zst")


def stack(path):
    """Volatility's LayerStacker on `path` with every stacker it has."""
    framework.import_files(volatility3.framework.layers, True)
    ctx = contexts.Context()
    ctx.config["FileLayer.location"] = Path(path).as_uri()
    ctx.add_layer(physical.FileLayer(ctx, "FileLayer", "FileLayer"))
    stackers = sorted(
        framework.class_subclasses(interfaces.automagic.StackerLayerInterface),
        key=lambda s: s.stack_order,
    )
    assert fv.ZstdSeekableStacker in stackers
    names = stacker.LayerStacker.stack_layer(ctx, "FileLayer", stackers)
    return ctx, names


class LayerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fv-vol-layer.")
        cls.stream = lime_fixture()
        cls.zst = capture_into(cls.tmp, cls.stream)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy(self, name):
        p = os.path.join(self.tmp, name)
        shutil.copyfile(self.zst, p)
        return p

    def test_stacks_lime_on_the_layer_and_reads_the_stream(self):
        ctx, names = stack(self.zst)
        top, mid = ctx.layers[names[0]], ctx.layers[names[1]]
        self.assertEqual(len(names), 3, names)
        self.assertIsInstance(top, lime.LimeLayer)
        self.assertIsInstance(mid, fv.ZstdSeekableLayer)
        self.assertEqual(mid.maximum_address + 1, len(self.stream))
        self.assertGreaterEqual(mid._table.frames, 5)
        self.assertEqual(mid.read(0, len(self.stream)), self.stream)
        rng = random.Random(5)
        for _ in range(300):
            off = rng.randrange(len(self.stream))
            n = rng.choice([1, 8, 4096, FRAME - 3, FRAME + 7, 3 * FRAME])
            n = min(n, len(self.stream) - off)
            self.assertEqual(mid.read(off, n), self.stream[off : off + n], (off, n))
        self.assertLessEqual(len(mid._cache), fv.CACHE_FRAMES)
        # Physical addresses through Volatility's LiME layer.
        offset = 0
        for start, end in RANGES:
            offset += 32
            n = end - start + 1
            self.assertEqual(top.read(start, n), self.stream[offset : offset + n], hex(start))
            self.assertEqual(top.read(end - 9, 10), self.stream[offset + n - 10 : offset + n])
            offset += n
        self.assertFalse(top.is_valid(0xA0000, 1))
        self.assertFalse(mid.is_valid(len(self.stream), 1))
        with self.assertRaises(volatility3.framework.exceptions.InvalidAddressException):
            mid.read(len(self.stream) - 4, 8)
        self.assertEqual(mid.read(len(self.stream) - 4, 8, pad=True), self.stream[-4:] + bytes(4))
        with self.assertRaises(volatility3.framework.exceptions.LayerException):
            mid.write(0, b"x")

    def test_a_flipped_byte_is_an_error_naming_its_frame(self):
        p = self.copy("flipped.lime.zst")
        ctx, names = stack(p)
        mid = ctx.layers[names[1]]
        t = mid._table
        at = (t.comp_off[2] + t.comp_off[3]) // 2
        with open(p, "r+b") as f:
            f.seek(at)
            b = f.read(1)
            f.seek(at)
            f.write(bytes([b[0] ^ 0x40]))
        mid._cache.clear()
        self.assertEqual(mid.read(0, 100), self.stream[:100])
        with self.assertRaisesRegex(fv.ZstdSeekableFormatException, "frame 2"):
            mid.read(t.decomp_off[2] + 10, 10)

    def test_cut_appended_or_lying_files_are_not_taken(self):
        cut = self.copy("cut.lime.zst")
        with open(cut, "r+b") as f:
            f.truncate(os.path.getsize(cut) - 1)
        appended = self.copy("appended.lime.zst")
        with open(appended, "ab") as f:
            f.write(b"\x00")
        for p in (cut, appended):
            with self.assertLogs(fv.vollog, "WARNING") as logs:
                ctx, names = stack(p)
            self.assertEqual(names, ["FileLayer"], p)
            self.assertIn("does not end in a seek table", "".join(logs.output))
        # A table entry that lies about a frame's compressed size.
        lying = self.copy("lying.lime.zst")
        size = os.path.getsize(lying)
        with open(lying, "r+b") as f:
            f.seek(size - 9)
            frames, desc, _ = struct.unpack("<IBI", f.read(9))
            entry = 12 if desc & 0x80 else 8
            first = size - 9 - frames * entry
            f.seek(first)
            csize = struct.unpack("<I", f.read(4))[0]
            f.seek(first)
            f.write(struct.pack("<I", csize + 1))
        ctx, names = stack(lying)
        self.assertEqual(names, ["FileLayer"])
        with open(lying, "rb") as f:
            data = f.read()
        with self.assertRaisesRegex(fv.ZstdSeekableFormatException, "add up to"):
            fv.SeekTable(lambda o, n: data[o : o + n], len(data))

    def test_vol_reads_the_image_in_place_only_with_the_plugin_dir(self):
        vol = os.path.join(os.path.dirname(sys.executable), "vol")
        want = BANNER.split(b"\n")[0].decode()
        outs = {}
        for with_layer in (True, False):
            cache = tempfile.mkdtemp(dir=self.tmp)
            args = [vol, "-q", "--offline", "--cache-path", cache]
            if with_layer:
                args += ["-p", str(PLUGIN_DIR)]
            r = subprocess.run(args + ["-f", self.zst, "banners.Banners"], capture_output=True, text=True, timeout=300)
            outs[with_layer] = r
        self.assertEqual(outs[True].returncode, 0, outs[True].stderr)
        self.assertIn(want, outs[True].stdout, outs[True])
        self.assertNotIn(want, outs[False].stdout, outs[False])

    def test_the_plugin_dir_offers_fv_hidden_modules(self):
        # volatility/ also holds fv/hidden_modules.py (issue 26): it must
        # import on every pinned release, or `vol -p` would drop it silently.
        vol = os.path.join(os.path.dirname(sys.executable), "vol")
        r = subprocess.run([vol, "-p", str(PLUGIN_DIR), "-h"], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fv.hidden_modules", r.stdout, r.stderr)
        self.assertNotIn("fv.hidden_modules", subprocess.run([vol, "-h"], capture_output=True, text=True, timeout=300).stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
