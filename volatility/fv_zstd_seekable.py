# The forensics volume's Volatility 3 layer: read `memory.lime.zst` in place.
#
#   vol -p /path/to/volatility -s symbols -f memory.lime.zst linux.pslist
#
# `capture` writes its image in the zstd seekable format: independent zstd
# frames of 1 MiB of the LiME stream each, then a seek table in a zstd
# skippable frame at the end of the file (docs/manifest.md, docs/analyst.md).
# This layer reads that table and exposes the decompressed LiME stream with
# random access: a read decompresses only the frames it touches, and the
# last few frames are kept, so Volatility's own LiME layer stacks on top of
# it as it does on an extracted `memory.lime`. Nothing is written anywhere.
#
# Volatility imports every .py file in a `-p` directory before it stacks
# layers, so the stacker below takes part in stacking like the built-in ones.
# The decompressor is the Python package `zstandard` (PyPI): install it where
# Volatility is installed (`pip install zstandard`).
#
# Every frame is checked before its bytes are used: the frames must fill the
# file up to the seek table exactly, each must be one zstd frame of the size
# the table gives, decompress to exactly the table's size (zstd checks the
# frame's own content checksum), and that checksum must equal the table's.
# A failed check is an error naming the frame, never data.

import logging
import struct
from bisect import bisect_right
from collections import OrderedDict
from typing import List, Optional

from volatility3.framework import constants, exceptions, interfaces
from volatility3.framework.configuration import requirements

try:
    import zstandard
except ImportError:  # reported when a seekable file is met (see the stacker)
    zstandard = None

vollog = logging.getLogger(__name__)

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
ZSTD_MAGIC = 0xFD2FB528
CHECKSUM_FLAG = 0x80
FOOTER_LEN = 9
FRAME_HEADER_LEN = 8
# As the toolkit's own reader (crates/evidence/src/reader.rs): a table that
# claims larger frames is refused rather than trusted with an allocation.
MAX_FRAME_DECOMPRESSED = 64 << 20
# Decompressed frames kept (1 MiB each with capture's frames).
CACHE_FRAMES = 64


class ZstdSeekableFormatException(exceptions.LayerException):
    """The file is not a valid zstd seekable file, or a frame is damaged."""


def parse_footer(footer: bytes):
    """(frames, checksums) from the last 9 bytes, or None if not seekable."""
    if len(footer) != FOOTER_LEN:
        return None
    frames, descriptor, magic = struct.unpack("<IBI", footer)
    if magic != SEEKABLE_MAGIC:
        return None
    return frames, descriptor


class SeekTable:
    """The checked seek table of a seekable zstd file of `file_size` bytes.

    `read(offset, length)` reads the underlying file (any callable)."""

    def __init__(self, read, file_size: int, name: str = "image") -> None:
        self.name = name
        if file_size < FOOTER_LEN + FRAME_HEADER_LEN:
            raise ZstdSeekableFormatException(name, "too short for a seek table")
        parsed = parse_footer(read(file_size - FOOTER_LEN, FOOTER_LEN))
        if parsed is None:
            raise ZstdSeekableFormatException(
                name, "no seek table: the file does not end in the seekable magic"
            )
        frames, descriptor = parsed
        if descriptor & ~CHECKSUM_FLAG & 0xFF:
            raise ZstdSeekableFormatException(
                name, f"seek table footer: reserved descriptor bits set ({descriptor:#04x})"
            )
        self.checksums = bool(descriptor & CHECKSUM_FLAG)
        entry_len = 12 if self.checksums else 8
        body = frames * entry_len + FOOTER_LEN
        table_len = body + FRAME_HEADER_LEN
        if table_len > file_size:
            raise ZstdSeekableFormatException(
                name, f"seek table of {frames} frames ({table_len} bytes) is larger than the file"
            )
        table_off = file_size - table_len
        magic, size = struct.unpack("<II", read(table_off, FRAME_HEADER_LEN))
        if magic != SKIPPABLE_MAGIC or size != body:
            raise ZstdSeekableFormatException(
                name, f"seek table's skippable frame header at {table_off:#x} is wrong"
            )
        raw = read(table_off + FRAME_HEADER_LEN, frames * entry_len)
        fmt = "<III" if self.checksums else "<II"
        self.comp_off: List[int] = [0] * (frames + 1)
        self.decomp_off: List[int] = [0] * (frames + 1)
        self.checksum: List[Optional[int]] = [None] * frames
        c = d = 0
        for i, entry in enumerate(struct.iter_unpack(fmt, raw)):
            csize, dsize = entry[0], entry[1]
            if dsize > MAX_FRAME_DECOMPRESSED:
                raise ZstdSeekableFormatException(
                    name, f"frame {i}: {dsize} decompressed bytes, more than the {MAX_FRAME_DECOMPRESSED} accepted"
                )
            if self.checksums:
                self.checksum[i] = entry[2]
            c += csize
            d += dsize
            self.comp_off[i + 1] = c
            self.decomp_off[i + 1] = d
        if c != table_off:
            raise ZstdSeekableFormatException(
                name,
                f"the seek table's frames add up to {c} bytes but {table_off} precede the table "
                "(truncated, appended to, or not this table's file)",
            )
        self.frames = frames
        self.length = d

    def frame_at(self, offset: int) -> int:
        """Index of the frame holding decompressed byte `offset`."""
        return bisect_right(self.decomp_off, offset) - 1


def decode_frame(table: SeekTable, index: int, data: bytes) -> bytes:
    """Decompresses frame `index` from its compressed bytes, checked."""
    name = table.name
    want = table.decomp_off[index + 1] - table.decomp_off[index]
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != ZSTD_MAGIC:
        raise ZstdSeekableFormatException(name, f"frame {index}: not a zstd frame")
    try:
        params = zstandard.get_frame_parameters(data)
        # Streaming, so a header that claims a huge content size allocates
        # nothing; the frame must end exactly where the table says.
        dobj = zstandard.ZstdDecompressor().decompressobj(write_size=max(want, 1))
        out = dobj.decompress(data)
    except zstandard.ZstdError as e:
        raise ZstdSeekableFormatException(name, f"frame {index}: {e}") from None
    if not dobj.eof or dobj.unused_data:
        raise ZstdSeekableFormatException(
            name, f"frame {index}: not exactly one zstd frame of the seek table's size"
        )
    if len(out) != want:
        raise ZstdSeekableFormatException(
            name, f"frame {index}: decompressed to {len(out)} bytes, the seek table says {want}"
        )
    expected = table.checksum[index]
    if expected is not None:
        # zstd verified the frame's content checksum (the low 32 bits of the
        # content's XXH64) while decompressing; it must be the table's too.
        if not params.has_checksum:
            raise ZstdSeekableFormatException(
                name, f"frame {index}: the seek table has a checksum but the frame has none"
            )
        if struct.unpack_from("<I", data, len(data) - 4)[0] != expected:
            raise ZstdSeekableFormatException(
                name, f"frame {index}: checksum differs from the seek table's"
            )
    return out


class ZstdSeekableLayer(interfaces.layers.DataLayerInterface):
    """The decompressed content of a zstd seekable file, with random access."""

    def __init__(
        self,
        context: interfaces.context.ContextInterface,
        config_path: str,
        name: str,
        metadata=None,
    ) -> None:
        super().__init__(context, config_path, name, metadata)
        self._base_layer = self.config["base_layer"]
        if zstandard is None:
            raise ZstdSeekableFormatException(
                name, "the Python package zstandard is needed: pip install zstandard"
            )
        base = self._context.layers[self._base_layer]
        self._table = SeekTable(base.read, base.maximum_address + 1, name)
        self._cache: "OrderedDict[int, bytes]" = OrderedDict()

    @property
    def maximum_address(self) -> int:
        return self._table.length - 1

    @property
    def minimum_address(self) -> int:
        return 0

    @property
    def dependencies(self) -> List[str]:
        return [self._base_layer]

    def is_valid(self, offset: int, length: int = 1) -> bool:
        return 0 <= offset and offset + max(length, 1) <= self._table.length

    def _frame(self, index: int) -> bytes:
        data = self._cache.get(index)
        if data is not None:
            self._cache.move_to_end(index)
            return data
        t = self._table
        start = t.comp_off[index]
        raw = self._context.layers[self._base_layer].read(start, t.comp_off[index + 1] - start)
        data = decode_frame(t, index, raw)
        self._cache[index] = data
        if len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)
        return data

    def read(self, offset: int, length: int, pad: bool = False) -> bytes:
        end = offset + length
        if length < 0 or offset < 0 or (end > self._table.length and not pad):
            raise exceptions.InvalidAddressException(
                self.name, max(offset, self._table.length), "Offset outside of the decompressed image"
            )
        chunks = []
        pos = max(offset, 0)
        stop = min(end, self._table.length)
        while pos < stop:
            index = self._table.frame_at(pos)
            frame_start = self._table.decomp_off[index]
            data = self._frame(index)
            take = data[pos - frame_start : stop - frame_start]
            chunks.append(take)
            pos += len(take)
        out = b"".join(chunks)
        if len(out) < length:
            out += b"\x00" * (length - len(out))
        return out

    def write(self, offset: int, data: bytes) -> None:
        raise exceptions.LayerException(self.name, "the evidence image is read-only")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return [
            requirements.TranslationLayerRequirement(
                name="base_layer", optional=False
            )
        ]


class ZstdSeekableStacker(interfaces.automagic.StackerLayerInterface):
    """Stacks the layer on a file that ends in the seekable magic and begins
    with a zstd frame; the LiME stacker then finds the LiME stream in it."""

    stack_order = 8

    @classmethod
    def stack(
        cls,
        context: interfaces.context.ContextInterface,
        layer_name: str,
        progress_callback: constants.ProgressCallback = None,
    ) -> Optional[interfaces.layers.DataLayerInterface]:
        base = context.layers[layer_name]
        size = base.maximum_address + 1
        if size < FOOTER_LEN + FRAME_HEADER_LEN + 4:
            return None
        try:
            head = base.read(0, 4)
            footer = base.read(size - FOOTER_LEN, FOOTER_LEN)
        except exceptions.InvalidAddressException:
            return None
        if struct.unpack("<I", head)[0] != ZSTD_MAGIC:
            return None
        where = getattr(base, "location", layer_name)
        if parse_footer(footer) is None:
            vollog.warning(
                f"{where} begins with a zstd frame but does not end in a seek table: cut short, "
                "or a plain zstd file (not capture's): run `capture verify` on it, or decompress "
                "it (zstd -d) and give Volatility the LiME file"
            )
            return None
        if zstandard is None:
            vollog.warning(
                f"{where} is a seekable zstd image (memory.lime.zst), but the Python "
                "package zstandard is not installed where Volatility is: pip install zstandard"
            )
            return None
        new_name = context.layers.free_layer_name("ZstdSeekableLayer")
        context.config[interfaces.configuration.path_join(new_name, "base_layer")] = layer_name
        try:
            return ZstdSeekableLayer(context, new_name, new_name)
        except ZstdSeekableFormatException as e:
            vollog.warning(f"{where}: not read as a seekable zstd image: {e}")
            return None
