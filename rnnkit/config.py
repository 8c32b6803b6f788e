"""One loader for every config: YAML/TOML files and `--set key=value` overrides into dataclasses.

Layers, lowest first: a `base` dict, a config file, then overrides::

    cfg = load_config(TrainConfig, path="train.yaml", overrides=["model.hidden_size=64"])

Each layer is checked against the dataclass's type hints before the layers merge, so an error names
its layer (`train.yaml: ...`, `--set lr=fast: ...`), the dotted key, the value and what would be
accepted. Values from files and dicts must have the right type already (an int passes for a float;
a bool is not an int, a string not a number); override values are text, parsed by the type.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from rnnkit.errors import ConfigError

C = TypeVar("C")
Overrides = Iterable[str] | Mapping[str, Any]
Layer = tuple[str | None, Any, bool]  # (label for errors, data, values are text)

_MISSING = dataclasses.MISSING
_NONE = type(None)
_BOOLS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLS |= {"false": False, "no": False, "off": False, "0": False}
_SCALARS: dict[type, tuple[Callable[[Any], bool], Callable[[str], Any]]] = {
    bool: (lambda v: isinstance(v, bool), lambda s: _BOOLS[s.strip().lower()]),
    int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), int),
    float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), float),
    str: (lambda v: isinstance(v, str), str),
    Path: (lambda v: isinstance(v, (str, Path)), Path),
}
#: the deepest nesting of sections a config layer may have. rnnkit's configs are two levels
#: deep; deeper input (100,000 nested brackets in a config.json) is refused in one line before
#: anything recurses into it.
MAX_DEPTH = 32
#: seeds go to NumPy's legacy seeding as well as torch's, which takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class _Section(dict):
    """Checked values for dataclass `cls`, by field name; sub-configs are `_Section`s too."""

    def __init__(self, cls: type, values: Mapping[str, Any] = ()) -> None:
        super().__init__(values)
        self.cls = cls


@functools.cache
def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Settable fields with resolved annotations (they are strings under `from __future__`)."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as e:  # a string annotation naming a class local to a function
        raise TypeError(f"cannot resolve the type hints of {cls.__qualname__}: {e}") from e
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return f.default


def _type_name(tp: Any) -> str:
    """Short name for listings: `float | None`, `{onecycle,cosine}`, `tuple[int, ...]`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in args) + "}"
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    return "None" if tp is _NONE else getattr(tp, "__name__", str(tp))


def _expects(tp: Any, text: bool) -> str:
    """What a value of type `tp` must be, for messages: `a float or None`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_expects(a, text) for a in args)
    if tp is bool:
        return "a bool (" + ("true/false, yes/no, on/off, 1/0" if text else "true or false") + ")"
    if tp in (tuple, list) or origin in (tuple, list):
        return f"a list ({_type_name(tp)})"
    names = {int: "an int", float: "a float", str: "a string", Path: "a path", _NONE: "None"}
    return names.get(tp) or ("a section" if _is_config(tp) else "a " + _type_name(tp))


def _wrong(tp: Any, value: Any, key: str, text: bool) -> ConfigError:
    return ConfigError(f"{key!r} expects {_expects(tp, text)}, got {_short(value)}")


def _short(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters, for messages about hostile or huge values."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"an int of about {value.bit_length() * 0.30103:.0f} digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _split_list(text: str) -> list[str]:
    """`'0.1,0.5'`, `'[0.1, 0.5]'` or `'(a, "b")'` -> items; `''` and `'[]'` -> `[]`."""
    s = text.strip()
    s = s[1:-1] if len(s) >= 2 and s[0] + s[-1] in ("[]", "()") else s
    items = [item.strip() for item in s.split(",")] if s.strip() else []
    return [i[1:-1] if len(i) >= 2 and i[0] == i[-1] and i[0] in "'\"" else i for i in items]


def _check(tp: Any, value: Any, key: str, text: bool) -> Any:
    """`value` checked against annotation `tp` (and parsed from a string if `text`)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any or tp is object:
        return value
    if _is_config(tp):
        if not isinstance(value, Mapping):
            keys = ", ".join(_fields(tp))
            raise ConfigError(
                f"{key!r} is a section, not a value; set its keys ({keys}), got {_short(value)}"
            )
        return _check_section(tp, value, key, text)
    if origin in (Union, types.UnionType):
        if _NONE in args and (value is None or (text and str(value).lower() in ("none", "null"))):
            return None
        sections = [a for a in args if _is_config(a)]
        if sections and isinstance(value, Mapping):  # let the section's own errors through
            return _check(sections[0], value, key, text)
        for arm in args:
            try:
                return _check(arm, value, key, text)
            except ConfigError:
                pass
        raise _wrong(tp, value, key, text)
    if origin is Literal:
        for choice in args:
            try:
                if _check(type(choice), value, key, text) == choice:
                    return choice
            except ConfigError:
                pass
        raise _wrong(tp, value, key, text)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _wrong(tp, value, key, text)
        return {str(k): _check(args[1], v, _join(key, str(k)), text) for k, v in value.items()}
    if isinstance(value, Mapping) and text:  # `--set lr.x=1`: only sections have keys
        inner = _join(key, next(iter(value)))
        raise ConfigError(f"unknown key {inner!r}: {key!r} is {_expects(tp, text)}, not a section")
    if tp in (tuple, list) or origin in (tuple, list):
        value = _split_list(value) if text and isinstance(value, str) else value
        if not isinstance(value, (list, tuple)):
            raise _wrong(tp, value, key, text)
        fixed = (origin or tp) is tuple and args and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            n, name = len(args), _type_name(tp)
            raise ConfigError(
                f"{key!r} expects {n} values ({name}), got {len(value)}: {_short(value)}"
            )
        kinds = args if fixed else [args[0] if args else Any] * len(value)
        items = [
            _check(t, v, f"{key}[{i}]", text)
            for i, (t, v) in enumerate(zip(kinds, value, strict=True))
        ]
        return tuple(items) if (origin or tp) is tuple else items
    if tp in _SCALARS:
        accepts, parse = _SCALARS[tp]
        if accepts(value):
            return _bounded(tp, tp(value), key)  # int(numpy.int64(3)) -> 3, float(3) -> 3.0
        # PyYAML reads YAML 1.1, where `3e-4` (no dot) is a string; accept it for a float.
        exponent = tp is float and _EXPONENT_FLOAT.fullmatch(str(value).strip())
        if isinstance(value, str) and (text or exponent):
            try:
                parsed = parse(value)
            except (ValueError, KeyError):
                pass
            else:
                return _bounded(tp, parsed, key)
    elif isinstance(tp, type) and isinstance(value, tp):  # e.g. an Enum member in a base dict
        return value
    raise _wrong(tp, value, key, text)


def _bounded(tp: Any, value: Any, key: str) -> Any:
    """Refuse what no float field can use: NaN or infinity (NaN passes every `<` check).

    Ranges of ints are each dataclass's own `__post_init__` business (see `check_range`).
    """
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{key!r} expects a finite float, got {_short(value)}")
    return value


def _depth(data: Any) -> int:
    """How deeply `data` nests mappings and lists, counted without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _check_section(cls: type, data: Mapping, prefix: str, text: bool) -> _Section:
    fields, out = _fields(cls), _Section(cls)
    for name, value in data.items():
        name, key = str(name), _join(prefix, str(name))
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {_join(prefix, close[0])!r}?" if close else ";"
            under = f" under {prefix!r}" if prefix else ""
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"unknown key {key!r}{hint} valid keys{under}: {valid}")
        out[name] = _check(fields[name][1], value, key, text)
    return out


def _merge(into: dict, new: Mapping, origins: dict, label: str | None, prefix: str = "") -> None:
    """Deep-merge `new` over `into`, noting in `origins` which layer set each dotted key."""
    for name, value in new.items():
        old, key = into.get(name), _join(prefix, name)
        if isinstance(value, dict):  # a section, or a dict field: merge key by key
            if not isinstance(old, dict) or getattr(old, "cls", 0) is not getattr(value, "cls", 0):
                old = into[name] = _Section(value.cls) if isinstance(value, _Section) else {}
            _merge(old, value, origins, label, key)
        else:
            into[name], origins[key] = value, label


def _locate(message: str, prefix: str, cls: type, origins: dict[str, str | None]) -> str:
    """Place a dataclass's own validation error: its dotted key and the layers that set it."""
    start = prefix + "." if prefix else ""
    inside = {k: lab for k, lab in origins.items() if lab and k.startswith(start)}
    named = [lab for k, lab in inside.items() if re.search(rf"\b{k.rsplit('.', 1)[-1]}\b", message)]
    labels = ", ".join(dict.fromkeys(named or inside.values()))
    if prefix:
        first = message.split(" ", 1)[0].rstrip(":")
        message = f"{prefix}.{message}" if first in _fields(cls) else f"{prefix!r}: {message}"
    return f"{labels}: {message}" if labels else message


def _build(cls: type[C], tree: Mapping, prefix: str, default: Any, origins: dict) -> C:
    """The dataclass for a checked tree; unset keys come from `default` or the field defaults."""
    kwargs = {}
    for name, (f, tp) in _fields(cls).items():
        key = _join(prefix, name)
        fallback = getattr(default, name) if default is not None else _field_default(f)
        value = tree.get(name, _MISSING)
        if isinstance(value, _Section):
            base = fallback if isinstance(fallback, value.cls) else None
            value = _build(value.cls, value, key, base, origins)
        elif value is _MISSING and fallback is _MISSING:
            if not _is_config(tp):
                raise ConfigError(f"missing required key {key!r}: expects {_expects(tp, False)}")
            value = _build(tp, {}, key, None, origins)
        kwargs[name] = fallback if value is _MISSING else value
    try:
        return cls(**kwargs)
    except ValueError as e:  # ConfigError too: the dataclass's own __post_init__ checks
        raise ConfigError(_locate(str(e), prefix, cls, origins)) from None


def _load(cls: type[C], layers: list[Layer], default: Any = None) -> C:
    """Check each layer, merge them in order and build `cls`."""
    if not _is_config(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    tree, origins = _Section(cls), {}
    for label, data, text in layers:
        try:
            if not isinstance(data, Mapping):
                raise ConfigError(f"expected a mapping of keys to values, got {_short(data)}")
            if _depth(data) > MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep")
            checked = _check_section(cls, data, "", text)
        except ConfigError as e:
            raise ConfigError(f"{label}: {e}" if label else str(e)) from None
        _merge(tree, checked, origins, label)
    return _build(cls, tree, "", default, origins)


def _split_override(item: str) -> tuple[list[str], str]:
    """`"model.hidden_size=64"` -> `(["model", "hidden_size"], "64")`."""
    key, eq, value = item.partition("=")
    path = [part.strip() for part in key.strip().removeprefix("--").split(".")]
    if not eq or not all(path):
        raise ConfigError(f"--set {item}: expected key=value, e.g. model.hidden_size=64")
    return path, value.strip()


def _put(tree: dict[str, Any], path: list[str], value: str) -> dict[str, Any]:
    node = tree
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):  # a later, deeper key replaces a value
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    return tree


def _override_layers(overrides: Overrides) -> list[Layer]:
    if isinstance(overrides, Mapping):
        return [("--set", overrides, True)]
    items = [overrides] if isinstance(overrides, str) else overrides
    return [(f"--set {item}", _put({}, *_split_override(item)), True) for item in items]


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn `key=value` strings into a nested dict of strings; later items win.

    Args:
        items: e.g. `["model.hidden_size=64", "lr=1e-3"]`; a leading `--` on a key is dropped.

    Returns:
        e.g. `{"model": {"hidden_size": "64"}, "lr": "1e-3"}`; values stay text.

    Raises:
        ConfigError: an item without `=`, or with an empty key or key part.
    """
    tree: dict[str, Any] = {}
    for item in items:
        _put(tree, *_split_override(item))
    return tree


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a `.yaml`/`.yml` (safe loader only) or `.toml` file; an empty YAML file gives `{}`.

    Raises:
        ConfigError: naming the file, if it is missing or unreadable, has a syntax error (with
            the parser's line) or its top level is not a mapping.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(f"{path}: unsupported config file type {suffix!r}; use .yaml or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file: {e}") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
            raise ConfigError(f"{path}: invalid TOML: {e}") from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deep (at most {MAX_DEPTH} levels)") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise ConfigError(
                f"{path}{where}: invalid YAML: {getattr(e, 'problem', None) or e}"
            ) from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deep (at most {MAX_DEPTH} levels)") from None
    if not isinstance(data, dict | None):
        kind = type(data).__name__
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys to values, not a {kind}"
        )
    return data or {}


def check_range(
    key: str, value: float | None, low: float, high: float, why: str, optional: bool = False
) -> None:
    """For `__post_init__` checks: refuse `value` outside [low, high] in one line.

    Args:
        key: the dotted key, as the user sets it (`window.horizon`).
        value: the value; None passes when `optional`.
        low, high: the accepted range, both included.
        why: where the upper bound comes from, so the message explains itself.
        optional: None is accepted (and named in the message).
    """
    if value is None and optional:
        return
    if value is None or not low <= value <= high:
        none = " or none" if optional else ""
        raise ConfigError(f"{key} must be from {low:,} to {high:,}{none} ({why}), got {value!r}")


#: a BPE vocabulary: the largest in use are ~256k; the bound keeps a typo (1e9) from reaching
#: the tokenizers library, whose allocation aborts the whole process.
MAX_BPE_VOCAB = 1_000_000
#: tokens of one text or window (max_length, bptt, max_tokens): a book, not a corpus.
MAX_TOKENS = 1_000_000


def check_seeds(cfg: Any) -> None:
    """For run configs: `train.seed` (and `data.split_seed`) must be seeds NumPy and torch take.

    Without this `--seed 2**64` ends in an OverflowError traceback from deep in torch.
    """
    for key in ("train.seed", "data.split_seed"):
        section, name = key.split(".")
        value = getattr(getattr(cfg, section, None), name, 0)
        if isinstance(value, int):
            check_range(key, value, 0, MAX_SEED, "NumPy's and torch's seeds")


def check_text_data(cfg: Any, prefix: str) -> None:
    """The checks shared by text data sections (vocab_size, min_freq, max_size, shares)."""
    check_range(f"{prefix}.vocab_size", cfg.vocab_size, 1, MAX_BPE_VOCAB, "bpe vocabularies")
    check_range(f"{prefix}.min_freq", cfg.min_freq, 0, 2**62, "a count")
    check_range(f"{prefix}.max_size", cfg.max_size, 1, 2**62, "a count", optional=True)
    for name in ("validation", "test"):
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{prefix}.{name} must be a share in [0, 1), got {value!r}")


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build config `cls` from a nested dict; missing keys take their defaults.

    Raises:
        ConfigError: an unknown key, a wrong type (values are checked, never parsed: see the
            module docstring), a missing required key or the dataclass's own validation error.
    """
    return _load(cls, [(None, data, False)])


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of config `cfg` (tuples become lists, paths strings) for `from_dict`."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"to_dict expects a dataclass instance, got {cfg!r}")
    return {name: _plain(getattr(cfg, name)) for name in _fields(type(cfg))}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, Path) else value


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Overrides = (),
    base: Mapping[str, Any] | None = None,
) -> C:
    """Build config `cls` from layers, later ones winning: `base` < file at `path` < `overrides`.

    Args:
        cls: the config dataclass.
        path: a `.yaml`, `.yml` or `.toml` file, or None.
        overrides: `key=value` strings (as given to `--set`), or a dict from `parse_overrides`.
        base: nested defaults that differ from the dataclass's own, e.g. a task's.

    Raises:
        ConfigError: naming the file or `--set` item, the dotted key and what would be accepted.
    """
    layers: list[Layer] = [] if base is None else [(None, base, False)]
    if path is not None:
        layers.append((str(path), read_config_file(path), False))
    return _load(cls, layers + _override_layers(overrides))


def apply_overrides(cfg: C, overrides: Overrides) -> C:
    """A copy of config `cfg` with `overrides` (as for `load_config`) applied; the rest is kept."""
    return _load(type(cfg), _override_layers(overrides), default=cfg)


def describe(cls: type, _prefix: str = "", _default: Any = None) -> list[tuple[str, str, object]]:
    """Every settable key of `cls` for `--help`: (dotted key, type name, default).

    A required key's default is `dataclasses.MISSING`.
    """
    rows: list[tuple[str, str, object]] = []
    for name, (f, tp) in _fields(cls).items():
        key = _join(_prefix, name)
        value = getattr(_default, name) if _default is not None else _field_default(f)
        if _is_config(tp):
            rows += describe(tp, key, value if isinstance(value, tp) else None)
        else:
            rows.append((key, _type_name(tp), value))
    return rows
