# The forensics volume (issue 26): Volatility 3's linux.malware.hidden_modules
# with its symbol-table check as the plugin means it.
#
# Why this file exists. Volatility 3 (2.11.0, in linux.hidden_modules' run(),
# to 2.28.2, the newest release, in linux.malware.hidden_modules) starts the
# plugin with
#
#     if context.symbol_space.verify_table_versions(
#         "dwarf2json", lambda version, _: (not version) or version < (0, 8, 0)
#     ):
#         raise SymbolSpaceError("... dwarf2json ... 0.8.0 or later")
#
# verify_table_versions returns True when no table fails the validator, and
# skips every table whose producer is not "dwarf2json". The validator is the
# wrong way round (True = refuse), so the plugin refuses every table that
# dwarf2json did not make (or, when a NativeTable comes next in the symbol
# space, dies on AttributeError: a NativeTable has no `producer`): `capture symbols`' (producer "forensics-volume
# capture symbols"), btf2json's, a hand-made one. What the check is for:
# dwarf2json before 0.8.0 dropped anonymous struct members ("Fix missing
# anonymous fields in StructTypes", dwarf2json 0.8.0), which the carving
# needs; `capture symbols` writes every anonymous member, as 0.8.0 does.
# `capture symbols` does not claim to be dwarf2json to get past the check:
# the producer names the program that made the table.
#
# This plugin is the upstream class (2.25 and later: linux.malware.
# hidden_modules; before: linux.hidden_modules), unchanged but for the
# check: it refuses a table made by dwarf2json older than 0.8.0 (or without
# a version), as upstream means to, and accepts the others. The carving,
# the output (and 2.2x's --dump) are upstream's own code.
#
# Use: vol -p <volume or repository>/volatility -s SYMBOLS -f IMAGE fv.hidden_modules
# (Volatility 2.11.0 to 2.28.2)
from typing import List

from volatility3.framework import exceptions, interfaces, renderers
from volatility3.framework.configuration import requirements
from volatility3.framework.renderers import format_hints

try:
    # 2.25 and later.
    from volatility3.framework.symbols.linux.utilities import (
        modules as linux_utilities_modules,
    )
    from volatility3.plugins.linux.malware import hidden_modules as upstream
except ImportError:
    # 2.11: the plugin is linux.hidden_modules and checks in run().
    linux_utilities_modules = None
    from volatility3.plugins.linux import hidden_modules as upstream


def _old_dwarf2json_tables(context) -> List[str]:
    """The symbol tables dwarf2json made before 0.8.0 (or without a version).

    Not through SymbolSpace.verify_table_versions: besides the inverted
    validator, it reads `producer` of every table in the space and raises
    AttributeError on a NativeTable (2.28.2), which only a dwarf2json table
    found first keeps it from reaching."""
    old = []
    for name in context.symbol_space:
        producer = getattr(context.symbol_space[name], "producer", None)
        if producer is None or producer.name != "dwarf2json":
            continue
        version = producer.version
        if not version or tuple(version) < (0, 8, 0):
            old.append(name)
    return old


def _refuse_old_dwarf2json_tables(context) -> None:
    old = _old_dwarf2json_tables(context)
    if old:
        raise exceptions.SymbolSpaceError(
            f"Invalid symbol table {', '.join(old)}, please ensure the ISF table produced by dwarf2json was created with version 0.8.0 or later"
        )


class Hidden_modules(upstream.Hidden_modules):
    """Carves memory to find hidden kernel modules (upstream's hidden_modules, accepting tables not made by dwarf2json)"""

    _required_framework_version = upstream.Hidden_modules._required_framework_version
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls) -> List[interfaces.configuration.RequirementInterface]:
        return upstream.Hidden_modules.get_requirements() + [
            requirements.VersionRequirement(
                name="upstream_hidden_modules",
                component=upstream.Hidden_modules,
                version=(upstream.Hidden_modules._version[0], 0, 0),
            )
        ]

    if linux_utilities_modules is not None:

        @classmethod
        def find_hidden_modules(cls, context, vmlinux_module_name: str):
            _refuse_old_dwarf2json_tables(context)
            known_module_addresses = cls.get_lsmod_module_addresses(
                context, vmlinux_module_name
            )
            boundaries = (
                linux_utilities_modules.Modules.get_modules_memory_boundaries(
                    context, vmlinux_module_name
                )
            )
            yield from linux_utilities_modules.Modules.get_hidden_modules(
                context, vmlinux_module_name, known_module_addresses, boundaries
            )

        implementation = find_hidden_modules

    else:

        def run(self):
            _refuse_old_dwarf2json_tables(self.context)
            return renderers.TreeGrid(
                [("Address", format_hints.Hex), ("Name", str)], self._generator()
            )
