"""The config loader: files and `--set` overrides into frozen dataclasses; errors for people."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.config import (
    apply_overrides,
    describe,
    from_dict,
    load_config,
    parse_overrides,
    read_config_file,
    to_dict,
)
from rnnkit.errors import ConfigError


@dataclass(frozen=True)
class EncoderCfg:
    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class HeadCfg:
    sizes: tuple[int, ...] = ()
    activation: str = "relu"


@dataclass(frozen=True)
class ModelCfg:
    # a default instance that differs from EncoderCfg's own defaults
    encoder: EncoderCfg = field(default_factory=lambda: EncoderCfg(hidden_size=256))
    head: Optional[HeadCfg] = None  # noqa: UP045 (the typing spelling must work too)
    num_classes: int = 2

    def __post_init__(self) -> None:
        if self.encoder.bidirectional and self.encoder.cell == "rnn":
            raise ValueError("a bidirectional rnn is not supported here")


@dataclass(frozen=True)
class TrainCfg:
    epochs: int
    model: ModelCfg = field(default_factory=ModelCfg)
    optimizer: str = "adamw"
    lr: float = 3e-3
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    clip_norm: float | None = 1.0
    seed: Optional[int] = None  # noqa: UP045
    betas: tuple[float, float] = (0.9, 0.999)
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    precision: Literal[16, 32] = 32
    out_dir: Path = Path("runs")
    class_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- from_dict / to_dict


def test_from_dict_nests_and_fills_defaults():
    cfg = from_dict(TrainCfg, {"epochs": 3, "lr": 1, "model": {"encoder": {"cell": "gru"}}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.model.encoder == EncoderCfg(cell="gru", hidden_size=256)  # the field's default kept
    assert cfg.model.num_classes == 2 and cfg.model.head is None


def test_from_dict_builds_an_optional_section_and_converts_sequences():
    cfg = from_dict(
        TrainCfg,
        {"epochs": 1, "model": {"head": {"sizes": [8, 4]}}, "betas": [0.5, 0.6], "out_dir": "x"},
    )
    assert cfg.model.head == HeadCfg(sizes=(8, 4))
    assert cfg.betas == (0.5, 0.6) and cfg.out_dir == Path("x")


def test_missing_required_key():
    assert error(from_dict, TrainCfg, {}) == "missing required key 'epochs': expects an int"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"epochs": True}, "'epochs' expects an int, got True"),
        ({"epochs": "3"}, "'epochs' expects an int, got '3'"),
        ({"epochs": 2.0}, "'epochs' expects an int, got 2.0"),
        ({"epochs": 1, "lr": True}, "'lr' expects a float, got True"),
        ({"epochs": 1, "lr": "fast"}, "'lr' expects a float, got 'fast'"),
        ({"epochs": 1, "optimizer": 3}, "'optimizer' expects a string, got 3"),
        ({"epochs": 1, "model": {"encoder": {"bidirectional": "yes"}}}, "a bool (true or false)"),
        ({"epochs": 1, "schedule": "linear"}, "one of 'onecycle', 'cosine', 'constant', got"),
        ({"epochs": 1, "precision": "16"}, "'precision' expects one of 16, 32, got '16'"),
        ({"epochs": 1, "clip_norm": "x"}, "'clip_norm' expects a float or None, got 'x'"),
        ({"epochs": 1, "betas": [1, 2, 3]}, "'betas' expects 2 values (tuple[float, float])"),
        ({"epochs": 1, "quantiles": 0.5}, "'quantiles' expects a list (list[float]), got 0.5"),
        ({"epochs": 1, "quantiles": [0.1, "a"]}, "'quantiles[1]' expects a float, got 'a'"),
        ({"epochs": 1, "model": 5}, "'model' is a section, not a value; set its keys (encoder,"),
        ({"epochs": 1, "class_weights": {"a": "x"}}, "'class_weights.a' expects a float"),
    ],
)
def test_wrong_types_from_data_name_key_value_and_expected_type(data, message):
    assert message in error(from_dict, TrainCfg, data)


def test_exponent_floats_that_pyyaml_reads_as_text_are_accepted():
    assert from_dict(TrainCfg, {"epochs": 1, "lr": "3e-4"}).lr == 3e-4


def test_unknown_key_suggests_and_lists_valid_keys():
    message = error(from_dict, TrainCfg, {"epochs": 1, "model": {"encoder": {"hiden_size": 3}}})
    assert message == (
        "unknown key 'model.encoder.hiden_size'; did you mean 'model.encoder.hidden_size'? "
        "valid keys under 'model.encoder': bidirectional, cell, dropout, hidden_size, num_layers"
    )
    message = error(from_dict, TrainCfg, {"epochs": 1, "zzz": 1})
    assert message.startswith("unknown key 'zzz'; valid keys: betas, class_weights, clip_norm,")


def test_post_init_errors_get_the_dotted_key():
    message = error(from_dict, TrainCfg, {"epochs": 1, "model": {"encoder": {"dropout": 1.5}}})
    assert message == "model.encoder.dropout must be in [0, 1), got 1.5"
    assert error(from_dict, TrainCfg, {"epochs": 0}) == "epochs must be at least 1, got 0"
    bad = {"epochs": 1, "model": {"encoder": {"cell": "rnn", "bidirectional": True}}}
    assert error(from_dict, TrainCfg, bad) == "'model': a bidirectional rnn is not supported here"


def test_to_dict_is_json_able_and_round_trips():
    cfg = from_dict(TrainCfg, {"epochs": 2, "model": {"head": {"sizes": [3]}}, "seed": 7})
    data = to_dict(cfg)
    assert data["betas"] == [0.9, 0.999] and data["model"]["head"] == {
        "sizes": [3],
        "activation": "relu",
    }
    assert data["out_dir"] == "runs"
    assert from_dict(TrainCfg, json.loads(json.dumps(data))) == cfg


finite = st.floats(allow_nan=False, allow_infinity=False)
configs = st.builds(
    TrainCfg,
    epochs=st.integers(1, 10**9),
    model=st.builds(
        ModelCfg,
        encoder=st.builds(
            EncoderCfg,
            cell=st.sampled_from(["lstm", "gru"]),
            hidden_size=st.integers(1, 4096),
            bidirectional=st.booleans(),
            dropout=st.floats(0.0, 0.99),
        ),
        head=st.none() | st.builds(HeadCfg, sizes=st.lists(st.integers()).map(tuple)),
    ),
    optimizer=st.text(),
    lr=finite,
    schedule=st.sampled_from(["onecycle", "cosine", "constant"]),
    clip_norm=st.none() | finite,
    seed=st.none() | st.integers(),
    betas=st.tuples(finite, finite),
    quantiles=st.lists(finite),
    precision=st.sampled_from([16, 32]),
    out_dir=st.sampled_from([Path("runs"), Path("a/b c"), Path("/tmp/x")]),
    class_weights=st.dictionaries(st.text(), finite),
)


@settings(max_examples=60, deadline=None)
@given(configs)
def test_round_trip_through_json(cfg):
    text = json.dumps(to_dict(cfg), allow_nan=False)
    assert from_dict(TrainCfg, json.loads(text)) == cfg


# ---------------------------------------------------------------- overrides


def test_parse_overrides_nests_strings_and_later_items_win():
    assert parse_overrides(["model.encoder.hidden_size=64", "lr=1e-3", "lr=2e-3", "x= a=b "]) == {
        "model": {"encoder": {"hidden_size": "64"}},
        "lr": "2e-3",
        "x": "a=b",
    }
    assert parse_overrides(["--lr=1"]) == {"lr": "1"}


@pytest.mark.parametrize("item", ["lr", "=3", "model..cell=gru", ".lr=1", "lr.=1", ""])
def test_override_syntax_errors_show_the_accepted_form(item):
    message = f"--set {item}: expected key=value, e.g. model.hidden_size=64"
    assert error(parse_overrides, [item]) == message
    assert error(load_config, TrainCfg, overrides=[item]) == message


def test_overrides_are_parsed_by_type():
    cfg = load_config(
        TrainCfg,
        base={"epochs": 1},
        overrides=[
            "epochs=5",
            "lr=1e-3",
            "model.encoder.bidirectional=YES",
            "model.encoder.cell=gru",
            "clip_norm=none",
            "seed=Null",
            "betas=[0.1, 0.2]",
            "quantiles=0.25,0.75",
            "model.head.sizes=(4, 2)",
            "schedule=cosine",
            "precision=16",
            "out_dir=/tmp/run",
            "optimizer=sgd",
            "class_weights.pos=2",
        ],
    )
    assert (cfg.epochs, cfg.lr, cfg.clip_norm, cfg.seed) == (5, 1e-3, None, None)
    assert cfg.model.encoder == EncoderCfg(cell="gru", hidden_size=256, bidirectional=True)
    assert cfg.betas == (0.1, 0.2) and cfg.quantiles == [0.25, 0.75]
    assert cfg.model.head == HeadCfg(sizes=(4, 2))
    assert (cfg.schedule, cfg.precision, cfg.out_dir) == ("cosine", 16, Path("/tmp/run"))
    assert cfg.class_weights == {"pos": 2.0}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("On", True), ("1", True), ("no", False), ("OFF", False), ("0", False)],
)
def test_bool_words(value, expected):
    cfg = load_config(
        TrainCfg, base={"epochs": 1}, overrides=[f"model.encoder.bidirectional={value}"]
    )
    assert cfg.model.encoder.bidirectional is expected


def test_empty_list_override():
    assert load_config(TrainCfg, base={"epochs": 1}, overrides=["quantiles=[]"]).quantiles == []


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=fast", "--set lr=fast: 'lr' expects a float, got 'fast'"),
        ("epochs=1.5", "--set epochs=1.5: 'epochs' expects an int, got '1.5'"),
        ("model.encoder.bidirectional=maybe", "expects a bool (true/false, yes/no, on/off, 1/0)"),
        ("schedule=linear", "'schedule' expects one of 'onecycle', 'cosine', 'constant', got"),
        ("clip_norm=big", "--set clip_norm=big: 'clip_norm' expects a float or None, got 'big'"),
        ("betas=1,2,3", "'betas' expects 2 values (tuple[float, float]), got 3"),
        ("quantiles=0.1,x", "--set quantiles=0.1,x: 'quantiles[1]' expects a float, got 'x'"),
        ("model=3", "--set model=3: 'model' is a section, not a value; set its keys (encoder,"),
        ("lr.x=1", "--set lr.x=1: unknown key 'lr.x': 'lr' is a float, not a section"),
        ("model.head.siz=3", "unknown key 'model.head.siz'; did you mean 'model.head.sizes'?"),
        (
            "model.hiden_size=64",
            "--set model.hiden_size=64: unknown key 'model.hiden_size'; "
            "valid keys under 'model': encoder, head, num_classes",
        ),
        (
            "model.encoder.hiden_size=64",
            "--set model.encoder.hiden_size=64: unknown key 'model.encoder.hiden_size'; "
            "did you mean 'model.encoder.hidden_size'? valid keys under 'model.encoder': ",
        ),
        (
            "model.encoder.dropout=1.5",
            "--set model.encoder.dropout=1.5: model.encoder.dropout must be in [0, 1), got 1.5",
        ),
    ],
)
def test_override_errors_name_the_item_and_key(item, message):
    assert message in error(load_config, TrainCfg, base={"epochs": 1}, overrides=[item])


def test_apply_overrides_keeps_values_not_named():
    cfg = from_dict(TrainCfg, {"epochs": 4, "model": {"encoder": {"hidden_size": 32}}})
    new = apply_overrides(cfg, ["model.encoder.num_layers=2"])
    assert new == dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, encoder=EncoderCfg(hidden_size=32, num_layers=2))
    )
    assert apply_overrides(cfg, parse_overrides(["lr=0.5"])).lr == 0.5
    assert "--set: 'lr' expects a float" in error(apply_overrides, cfg, {"lr": "x"})


# ---------------------------------------------------------------- files and precedence

YAML = """\
epochs: 10
lr: 3e-4
model:
  encoder:
    cell: gru
    bidirectional: yes
  head:
    sizes: [16, 8]
"""

TOML = """\
epochs = 10
lr = 3e-4

[model.encoder]
cell = "gru"
bidirectional = true

[model.head]
sizes = [16, 8]
"""


@pytest.mark.parametrize(
    ("name", "text"), [("cfg.yaml", YAML), ("cfg.yml", YAML), ("c.toml", TOML)]
)
def test_yaml_and_toml_files_load_the_same(tmp_path, name, text):
    cfg = load_config(TrainCfg, path=write(tmp_path, name, text))
    assert cfg.epochs == 10 and cfg.lr == 3e-4
    assert cfg.model.encoder == EncoderCfg(cell="gru", hidden_size=256, bidirectional=True)
    assert cfg.model.head == HeadCfg(sizes=(16, 8))


def test_precedence_base_then_file_then_overrides(tmp_path):
    path = write(tmp_path, "cfg.yaml", "epochs: 2\nlr: 0.2\nmodel: {encoder: {cell: gru}}\n")
    base = {"epochs": 1, "lr": 0.1, "optimizer": "sgd", "model": {"encoder": {"hidden_size": 8}}}
    cfg = load_config(TrainCfg, path=path, overrides=["lr=0.3"], base=base)
    assert (cfg.epochs, cfg.lr, cfg.optimizer) == (2, 0.3, "sgd")
    assert cfg.model.encoder == EncoderCfg(cell="gru", hidden_size=8)  # sections merge key by key
    cfg = load_config(TrainCfg, path=path, overrides=["model.encoder.num_layers=3"], base=base)
    assert cfg.model.encoder == EncoderCfg(cell="gru", hidden_size=8, num_layers=3)
    assert load_config(TrainCfg, path=path).lr == 0.2


def test_a_later_none_replaces_a_section_and_a_later_section_replaces_none(tmp_path):
    path = write(tmp_path, "cfg.yaml", "epochs: 1\nmodel: {head: {sizes: [4]}}\n")
    assert load_config(TrainCfg, path=path, overrides=["model.head=none"]).model.head is None
    cfg = load_config(
        TrainCfg, base={"epochs": 1, "model": {"head": None}}, overrides=["model.head.sizes=2"]
    )
    assert cfg.model.head == HeadCfg(sizes=(2,))


def test_file_errors_name_the_file(tmp_path):
    path = write(tmp_path, "cfg.yaml", "epochs: 1\nmodel:\n  hiden_size: 64\n")
    assert error(load_config, TrainCfg, path=path) == (
        f"{path}: unknown key 'model.hiden_size'; valid keys under 'model': encoder, head, "
        "num_classes"
    )
    path = write(tmp_path, "bad.yaml", "epochs: '10'\n")
    assert error(load_config, TrainCfg, path=path) == f"{path}: 'epochs' expects an int, got '10'"
    path = write(tmp_path, "bad.toml", "epochs = true\n")
    assert error(load_config, TrainCfg, path=path) == f"{path}: 'epochs' expects an int, got True"
    path = write(tmp_path, "zero.toml", "epochs = 0\n")
    assert error(load_config, TrainCfg, path=path) == f"{path}: epochs must be at least 1, got 0"


def test_post_init_errors_name_the_layer_that_set_the_key(tmp_path):
    path = write(tmp_path, "cfg.yaml", "epochs: 1\nmodel: {encoder: {cell: rnn, dropout: 0.5}}\n")
    message = error(load_config, TrainCfg, path=path, overrides=["model.encoder.dropout=2"])
    assert (
        message == "--set model.encoder.dropout=2: model.encoder.dropout must be in [0, 1), got 2.0"
    )
    message = error(load_config, TrainCfg, path=path, overrides=["model.encoder.bidirectional=1"])
    # the message names `bidirectional`, so the override that set it is blamed
    assert message == (
        "--set model.encoder.bidirectional=1: 'model': a bidirectional rnn is not supported here"
    )
    message = error(load_config, TrainCfg, path=path, overrides=["model.encoder.dropout=-1"])
    assert message.startswith("--set model.encoder.dropout=-1: model.encoder.dropout must be")


def test_read_config_file_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error(read_config_file, missing) == f"{missing}: no such config file"
    path = write(tmp_path, "cfg.json", "{}")
    assert "cfg.json: unsupported config file type '.json'; use .yaml or .toml" in error(
        read_config_file, path
    )
    path = write(tmp_path, "bad.yaml", "epochs: 1\nlr: [1, 2\nmodel: x\n")
    message = error(read_config_file, path)
    assert message.startswith(f"{path}:3:") and "invalid YAML" in message
    path = write(tmp_path, "bad.toml", "epochs = 1\nlr = \n")
    message = error(read_config_file, path)
    assert message.startswith(f"{path}: invalid TOML: ") and "line 2" in message
    path = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    assert error(read_config_file, path) == (
        f"{path}: the top level must be a mapping of keys to values, not a list"
    )
    assert read_config_file(write(tmp_path, "empty.yaml", "# nothing\n")) == {}


def test_yaml_is_read_safely(tmp_path):
    path = write(tmp_path, "evil.yaml", "epochs: !!python/object/apply:os.system ['echo hi']\n")
    message = error(read_config_file, path)
    assert message.startswith(f"{path}:1:") and "could not determine a constructor" in message


# ---------------------------------------------------------------- describe


def test_describe_lists_dotted_keys_types_and_defaults():
    rows = {key: (kind, default) for key, kind, default in describe(TrainCfg)}
    assert rows["epochs"] == ("int", dataclasses.MISSING)
    assert rows["model.encoder.hidden_size"] == ("int", 256)
    assert rows["model.encoder.cell"] == ("{lstm,gru,rnn}", "lstm")
    assert rows["model.head"] == ("HeadCfg | None", None)
    assert rows["clip_norm"] == ("float | None", 1.0)
    assert rows["seed"] == ("int | None", None)
    assert rows["betas"] == ("tuple[float, float]", (0.9, 0.999))
    assert rows["class_weights"] == ("dict[str, float]", {})


def test_config_classes_local_to_a_function_fail_clearly():
    @dataclass(frozen=True)
    class Inner:
        size: int = 1

    @dataclass(frozen=True)
    class Outer:
        inner: Inner = field(default_factory=Inner)

    with pytest.raises(TypeError, match=r"cannot resolve the type hints of .*Outer"):
        from_dict(Outer, {})
