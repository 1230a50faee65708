"""Command-line flags generated from config dataclasses: one flag per scalar field, named after the field, its help
text the comment on the field, grouped by dataclass, with each preset's value shown. train.py's `options` is the
one user of it; checked by tests/test_train.py (--help lists every field with both presets' values)."""
from __future__ import annotations

import argparse
import ast
import inspect
import textwrap
import typing
from dataclasses import fields
from pathlib import Path


def field_comments(cls) -> dict:
    """Each field's comment in `cls`'s source: the one on its line, else the comment lines right above it."""
    lines = textwrap.dedent(inspect.getsource(cls)).splitlines()
    comments = {}
    for node in ast.parse("\n".join(lines)).body[0].body:
        if isinstance(node, ast.AnnAssign):
            tail = lines[node.end_lineno - 1][node.end_col_offset:].strip()
            above, i = [], node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip().lstrip("# "))
                i -= 1
            comments[node.target.id] = tail.lstrip("# ") if tail.startswith("#") else " ".join(above)
    return comments


def flag_fields(configs: tuple, prefixes: dict, skip: tuple = ()) -> dict:
    """flag name (as its argparse dest) → (config class, field name, type), for every scalar field of `configs` a
    flag may set. A class in `prefixes` gives its fields that prefix unless the name already holds its stem
    ("slot_": num_slots stays, dim becomes slot_dim); fields named in `skip` get no flag."""
    out = {}
    for cls in configs:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            kinds = [t for t in typing.get_args(hints[f.name]) if t is not type(None)] or [hints[f.name]]
            if len(kinds) != 1 or kinds[0] not in (bool, int, float, str) or f.name in skip:
                continue  # tuples, nested configs, the model
            prefix = prefixes.get(cls, "")
            dest = f.name if not prefix or prefix.rstrip("_") in f.name else prefix + f.name
            out[dest] = (cls, f.name, kinds[0])
    return out


def build_parser(description: str, configs: tuple, flag_map: dict, preset_value, presets: tuple
                 ) -> argparse.ArgumentParser:
    """A parser with one group per config class and one flag per entry of `flag_map` (`flag_fields`). Every flag
    defaults to None (unset: the preset decides); its help ends with the presets' values (`preset_value(preset,
    cls, name)`), or one default when they agree. Booleans get --x / --no-x."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {cls: ap.add_argument_group(f"{cls.__name__} ({Path(inspect.getsourcefile(cls)).name})",
                                         cls.__doc__.split("\n")[0]) for cls in configs}
    comments = {cls: field_comments(cls) for cls in groups}
    for dest, (cls, name, kind) in flag_map.items():
        values = [preset_value(p, cls, name) for p in presets]
        shown = ", ".join(f"{p} {v}" for p, v in zip(presets, values))
        default = "" if name == "preset" else f" [{shown}]" if any(v != values[0] for v in values[1:]) else \
            f" [default {values[0]}]"
        helptext = (comments[cls][name] + default).replace("%", "%%")
        flag = "--" + dest.replace("_", "-")
        if kind is bool:
            groups[cls].add_argument(flag, action=argparse.BooleanOptionalAction, help=helptext)
        else:
            groups[cls].add_argument(flag, type=kind, help=helptext, metavar=kind.__name__.upper())
    return ap
