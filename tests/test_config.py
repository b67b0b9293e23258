"""Behaviour of the params loader: the schema generated from the dataclasses, defaults, located errors,
overlays, merge CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
import yaml

import resetrl.core.config as config_module
from resetrl.core.config import (
    SCHEMA_FILE,
    DeclaredParams,
    ParamsError,
    UndeclaredKeyError,
    add_params_argument,
    config_overrides,
    generated_schema,
    load_params,
    load_schema,
    main,
    params_from_args,
    params_to_dict,
    results_root,
    select,
)
from resetrl.core.params import ArmConfig, Layout, Loss, Params, Selector
from resetrl.core.schema import choices, param, section_schema
from resetrl.rl.losses import LOSS_AGGREGATION
from resetrl.rl.resets import LAYOUTS
from resetrl.rollout.engine import ENGINES

REPO = Path(__file__).parents[1]
PARAMS = REPO / "params.yaml"
SCHEMA = load_schema()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sections() -> list[str]:
    return list(SCHEMA["properties"])


def leaf_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """(path, schema) of every leaf: a property with a default (sections have none)."""
    out = []
    for key, sub in schema["properties"].items():
        path = (*prefix, key)
        out += [(path, sub)] if "default" in sub else leaf_paths(sub, path)
    return out


def error(*paths: Path) -> str:
    with pytest.raises(ParamsError) as info:
        load_params(list(paths))
    return str(info.value)


# --- schema and defaults ------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_property_described_every_leaf_defaulted_and_closed() -> None:
    def walk(schema: dict[str, Any], where: str, in_leaf: bool) -> None:
        if schema.get("type") == "object":  # closed, a named collection of one $defs shape (arms),
            closed = schema.get("additionalProperties")  # or a defaulted map of plain values (eval_files)
            assert closed is False or set(closed) == {"$ref"} or ("default" in schema and "type" in closed), where
        for key, sub in schema.get("properties", {}).items():
            assert sub.get("description"), f"{where}.{key} lacks a description"
            if not in_leaf and "default" not in sub:  # then it is a section
                assert sub["type"] == "object" and "properties" in sub, f"{where}.{key} lacks a default"
            walk(sub, f"{where}.{key}", in_leaf or "default" in sub)

    walk(SCHEMA, "<root>", in_leaf=False)
    walk(SCHEMA["$defs"]["arm"], "$defs.arm", in_leaf=True)
    assert len(leaf_paths(SCHEMA)) > 40


def test_defaults_are_valid_and_match_params_yaml(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "{}\n")
    assert load_params([empty]) == load_params([PARAMS])


def test_params_yaml_sets_every_key() -> None:
    raw = yaml.safe_load(PARAMS.read_text())
    for path, sub in leaf_paths(SCHEMA):
        value = raw
        for part in path:
            assert part in value, f"params.yaml lacks {'.'.join(path)}"
            value = value[part]
        assert value == sub["default"], ".".join(path)


def test_repo_params_yaml_loads_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert load_params() == load_params([PARAMS]) == load_params(PARAMS)


# --- the dataclasses are the declaration; the schema is generated -------------------------------


def test_every_integer_key_has_an_upper_bound() -> None:
    # A count or size without one accepts rl.steps: 1e23 (a whole number to JSON Schema) and runs for ever.
    def integers(schema: dict[str, Any], where: str):
        for key, sub in schema.get("properties", {}).items():
            sub = sub.get("items", sub) if sub.get("type") == "array" else sub
            if "integer" in (sub.get("type") if isinstance(sub.get("type"), list) else [sub.get("type")]):
                yield f"{where}.{key}", sub
            yield from integers(sub, f"{where}.{key}")

    keys = [*integers(SCHEMA, "params"), *integers(SCHEMA["$defs"]["arm"], "arm")]
    assert len(keys) > 40 and [k for k, sub in keys if "maximum" not in sub] == []
    assert SCHEMA["properties"]["rl"]["properties"]["steps"]["maximum"] == 1_000_000


@pytest.mark.parametrize("overlay", sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.yaml")))
def test_every_committed_config_is_within_the_bounds(overlay: str) -> None:
    load_params([PARAMS, REPO / overlay])


def test_committed_schema_is_generated_from_the_dataclasses() -> None:
    assert SCHEMA == generated_schema()
    assert main(["schema", "--check"]) == 0


def test_schema_check_fails_on_a_hand_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    edited = tmp_path / "params.schema.json"
    edited.write_text(SCHEMA_FILE.read_text().replace('"minimum": 1000', '"minimum": 10'))
    monkeypatch.setattr(config_module, "SCHEMA_FILE", edited)
    assert main(["schema", "--check"]) == 1
    assert "differs from the dataclasses" in capsys.readouterr().err


@dataclass(frozen=True)
class Widgets:
    """A section declared the way every params section is."""

    #: How many widgets
    #: (a description may span lines).
    count: int = param(3, minimum=1)
    #: Which mode.
    mode: Literal["a", "b"] = param("a")
    #: Optional name.
    name: str | None = param(None, pattern="^[a-z]+$")
    #: Sizes.
    sizes: tuple[float, ...] = param((0.5,), items={"exclusiveMinimum": 0}, minItems=1)


def test_a_key_is_declared_once_and_its_schema_derived() -> None:
    assert section_schema(Widgets, {}) == {
        "description": "A section declared the way every params section is.", "type": "object",
        "additionalProperties": False, "required": ["count", "mode", "name", "sizes"], "properties": {
            "count": {"description": "How many widgets (a description may span lines).", "type": "integer",
                      "minimum": 1, "default": 3},
            "mode": {"description": "Which mode.", "enum": ["a", "b"], "default": "a"},
            "name": {"description": "Optional name.", "type": ["string", "null"], "pattern": "^[a-z]+$",
                     "default": None},
            "sizes": {"description": "Sizes.", "type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                      "minItems": 1, "default": [0.5]}}}
    assert Widgets() == Widgets(3, "a", None, (0.5,))  # the declared defaults are the dataclass's too


@dataclass(frozen=True)
class Undocumented:
    """A section with a key nobody described."""

    count: int = param(3)


def test_an_undocumented_key_is_refused() -> None:
    with pytest.raises(TypeError, match="Undocumented.count: no `#:` comment"):
        section_schema(Undocumented, {})


def test_every_key_has_a_description() -> None:
    def walk(schema: dict[str, Any], where: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            assert sub.get("description", "").strip(), f"{where}.{key}"
            walk(sub, f"{where}.{key}")
    walk(SCHEMA, "params")
    walk(SCHEMA["$defs"]["arm"], "arm")


def test_enumerations_are_shared_by_schema_and_code() -> None:
    arm = SCHEMA["$defs"]["arm"]["properties"]
    assert arm["selector"]["enum"] == list(choices(Selector))
    assert arm["layout"]["enum"] == list(choices(Layout)) == list(LAYOUTS)
    assert arm["loss"]["enum"] == list(choices(Loss)) and set(LOSS_AGGREGATION) == set(choices(Loss))
    assert SCHEMA["properties"]["rollout"]["properties"]["engine"]["enum"] == list(ENGINES)


def test_params_dataclasses_are_frozen() -> None:
    for cls in (Params, ArmConfig, *(typing.get_type_hints(Params).values())):
        assert not dataclasses.is_dataclass(cls) or cls.__dataclass_params__.frozen


def test_loaded_values_have_field_types(tmp_path: Path) -> None:
    # An integer written for a float field still becomes a float, so dumps and equality are stable.
    overlay = write(tmp_path, "o.yaml", "rl: {grad_clip: 2, lr: 1e-4}\ntask:\n  op_weights: {'*': 3}\n")
    params = load_params([PARAMS, overlay])
    assert params.rl.grad_clip == 2.0 and isinstance(params.rl.grad_clip, float)
    assert params.rl.lr == 1e-4
    assert params.task.op_weights == {"+": 1.0, "-": 1.0, "*": 3.0}
    assert all(isinstance(w, float) for w in params.task.op_weights.values())
    assert isinstance(params.study.seeds, tuple) and isinstance(params.eval.pass_k, tuple)


# --- located errors -----------------------------------------------------------------------------

BAD_VALUES = [
    # (yaml text, line, dotted key, message fragment)
    ("rl:\n  steps: 10\n  lrr: 0.1\n", 3, "rl.lrr", "unknown key (allowed: steps, prompts_per_step"),
    ("study:\n  seeds: [0]\nrll: {}\n", 3, "rll", "unknown key (allowed: study, arms, task"),
    ("task:\n  seed: 1\n  n_val: many\n", 3, "task.n_val", "'many' is not of type 'integer'"),
    ("sft:\n  lr: 0.1\n  steps: 2.5\n", 3, "sft.steps", "is not of type 'integer'"),
    ("rl:\n  lr: -1\n", 2, "rl.lr", "-1 is less than or equal to the minimum of 0"),
    ("rollout:\n\n  top_p: 1.5\n", 3, "rollout.top_p", "greater than the maximum of 1"),
    ("rollout: {temperature: 0}\n", 1, "rollout.temperature", "less than or equal to the minimum of 0"),
    ("arms:\n  grpo:\n    kl_coef: -0.1\n", 3, "arms.grpo.kl_coef", "less than the minimum of 0"),
    ("arms:\n  grpo:\n    selector: best\n", 3, "arms.grpo.selector", "'best' is not one of"),
    ("eval:\n  pass_k:\n    - 1\n    - 0\n", 4, "eval.pass_k[1]", "less than the minimum of 1"),
    ("eval:\n  pass_k: [1, 1]\n", 2, "eval.pass_k", "non-unique"),
    ("study:\n  seeds: [0, -1]\n", 2, "study.seeds[1]", "less than the minimum of 0"),
    ("task:\n  op_weights:\n    '/': 1\n", 3, "task.op_weights./", "unknown key (allowed: +, -, *)"),
    ("task:\n  op_weights: {'+': -1}\n", 2, "task.op_weights.+", "less than the minimum of 0"),
    ("rl:\n  lr: .nan\n", 2, "rl.lr", "must be finite"),
    ("rl:\n  lr: 3\n", 2, "rl.lr", "greater than the maximum of 1"),
    ("runtime: 4\n", 1, "runtime", "4 is not of type 'object'"),
    ("study:\n  name: '..'\n", 2, "study.name", "'..' does not match"),
    ("study:\n  name: a/b\n", 2, "study.name", "'a/b' does not match"),
    # A float for an integer key: 1e23 is a whole number to JSON Schema, so the bound is what refuses it.
    ("rl:\n  steps: 1e23\n", 2, "rl.steps", "1e+23 is greater than the maximum of 1000000"),
    ("sft:\n  skill_steps: 2e6\n", 2, "sft.skill_steps", "greater than the maximum of 1000000"),
    ("rl:\n  group_size: 4096\n", 2, "rl.group_size", "4096 is greater than the maximum of 1024"),
    ("task:\n  n_train: 1e12\n", 2, "task.n_train", "greater than the maximum of 10000000"),
    ("study:\n  seeds: [0, 1e23]\n", 2, "study.seeds[1]", "greater than the maximum of 2147483647"),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), BAD_VALUES)
def test_schema_error_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, fragment: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    message = error(path)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert fragment in message


def test_all_schema_errors_reported_sorted_by_file_and_line(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "rl:\n  lr: -1\n  steps: 0\nmodel:\n  num_layers: x\n")
    overlay = write(tmp_path, "over.yaml", "eval:\n  n_samples: 0\nrl:\n  bogus: 1\n")
    lines = error(base, overlay).splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{base}:2", "rl.lr"],
        [f"{base}:3", "rl.steps"],
        [f"{base}:5", "model.num_layers"],
        [f"{overlay}:2", "eval.n_samples"],
        [f"{overlay}:4", "rl.bogus"],
    ]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "rl:\n  steps: 3\n  lr: [1,\n")
    assert error(path).startswith(f"{path}:4: invalid YAML")


def test_missing_file_names_it(tmp_path: Path) -> None:
    assert error(PARAMS, tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: file not found"


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "3\n"])
def test_non_mapping_top_level_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "list.yaml", text)
    assert error(path) == f"{path}:1: top level must be a mapping"


def test_duplicate_key_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "rl:\n  lr: 0.1\n  lr: 0.2\n")
    assert error(path) == f"{path}:3: rl.lr: duplicate key"


@pytest.mark.parametrize("text", ["", "# nothing\n", "---\n", "null\n"])
def test_an_empty_file_is_refused_as_snakemake_refuses_it(tmp_path: Path, text: str) -> None:
    # Snakemake refuses an empty --configfile ("Config file must be given as JSON or YAML with keys at
    # top level."): `config check` refuses it too, naming it; an overlay that sets nothing is {}.
    path = write(tmp_path, "empty.yaml", text)
    assert error(PARAMS, path) == f"{path}: empty (no YAML mapping): a params file sets at least one key, or is {{}}"
    assert load_params([PARAMS, write(tmp_path, "nothing.yaml", "{}\n")]) == load_params([PARAMS])


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    assert error(PARAMS, tmp_path) == f"{tmp_path}: is a directory, not a params file"


@pytest.mark.parametrize(("data", "message"), [
    (b"rl:\n  steps: \xff\xfe\x00\x81", "{path}:2: not UTF-8 text (byte 0xff): a params file is YAML"),
    (b"\xff\xfer\x00l\x00:\x00", "{path}:1: not UTF-8 text (byte 0xff): a params file is YAML"),  # UTF-16
    (b"rl:\n  steps: 3\x00\x01\n", "{path}:2: not a text file (control character 0x00): a params file is YAML"),
])
def test_a_binary_file_is_named_in_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert error(PARAMS, path) == message.format(path=path)


def test_check_cli_names_an_unreadable_overlay_in_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "bin.yaml").write_bytes(bytes(range(128, 256)))  # a model file, say
    (tmp_path / "empty.yaml").write_text("")
    for bad, start in [(tmp_path, f"{tmp_path}: is a directory"),
                       (tmp_path / "bin.yaml", f"{tmp_path}/bin.yaml:1: not UTF-8"),
                       (tmp_path / "empty.yaml", f"{tmp_path}/empty.yaml: empty")]:
        assert main(["check", str(PARAMS), str(bad)]) == 2
        out = capsys.readouterr()
        assert out.out == "" and out.err.startswith(start) and len(out.err.splitlines()) == 1, out.err


# --- overlays -----------------------------------------------------------------------------------


def test_overlay_deep_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    overlay = write(tmp_path, "smoke.yaml", "rl:\n  steps: 3\nstudy:\n  seeds: [7]\n")
    base, merged = load_params([PARAMS]), load_params([PARAMS, overlay])
    assert merged.rl == dataclasses.replace(base.rl, steps=3)
    assert merged.study.seeds == (7,)
    assert merged.task == base.task and merged.study.methods == base.study.methods


def test_op_weights_merge_per_operation(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "task:\n  op_weights: {'+': 2}\n")
    assert load_params([base]).task.op_weights == {"+": 2.0}  # an absent operation is not drawn
    overlay = write(tmp_path, "over.yaml", "task:\n  op_weights: {'*': 0}\n")
    assert load_params([PARAMS, overlay]).task.op_weights == {"+": 1.0, "-": 1.0, "*": 0.0}


def test_later_overlay_wins(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "rl: {steps: 3, lr: 0.5}\n")
    second = write(tmp_path, "b.yaml", "rl: {steps: 4}\n")
    merged = load_params([PARAMS, first, second])
    assert (merged.rl.steps, merged.rl.lr) == (4, 0.5)


def test_error_in_overlay_names_overlay_and_its_line(tmp_path: Path) -> None:
    overlay = write(tmp_path, "smoke.yaml", "# smoke\nrl:\n  steps: 3\n  lrr: 0.1\n")
    message = error(PARAMS, overlay)
    assert message.startswith(f"{overlay}:4: rl.lrr: unknown key"), message
    assert str(PARAMS) not in message


def test_error_in_base_keeps_base_location_under_overlay(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "rl:\n  steps: 3\n  lr: 0\n")
    overlay = write(tmp_path, "over.yaml", "rl:\n  steps: 4\n")
    assert error(base, overlay).startswith(f"{base}:3: rl.lr: ")


def test_replaced_value_is_located_in_the_overlay(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "eval:\n  pass_k: [1, 2]\n")
    overlay = write(tmp_path, "over.yaml", "\neval:\n  pass_k: [0]\n")
    assert error(base, overlay).startswith(f"{overlay}:3: eval.pass_k[0]: ")


# --- cross-field checks -------------------------------------------------------------------------

CROSS = [
    ("study:\n  methods: [grpo, sft]\n", 2, "study.methods", "name arms that `arms` does not define: ['sft']"),
    ("task:\n  min_steps: 4\n  max_steps: 3\n", 3, "task.max_steps", "task.min_steps (4) must be <= task.max_steps"),
    ("task:\n  ood_max_steps: 4\n", 2, "task.ood_max_steps", "task.ood_min_steps (10) must be <= task.ood_max_steps"),
    ("task:\n  value_max: 29\n", 2, "task.value_max", "must be >= 2 * task.start_max (30)"),
    ("task:\n  start_max: 500\n", 2, "task.start_max", "task.value_max (40) must be >= 2 * task.start_max"),
    ("eval:\n  pass_k: [1, 16]\n", 2, "eval.pass_k", "eval.n_samples (2) must be >= max(eval.pass_k) (16)"),
    ("rl:\n  minibatches: 3\n", 2, "rl.minibatches", "(64) must be divisible by rl.minibatches (3)"),
    ("rl:\n  prompts_per_step: 1\n  group_size: 3\n", 3, "rl.group_size", "rl.prompts_per_step * rl.group_size (3)"),
    ("task:\n  op_weights: {'+': 0, '-': 0, '*': 0}\n", 2, "task.op_weights", ": at least one of task.op_"),
    ("model:\n  num_heads: 3\n", 2, "model.num_heads", "divisible by model.num_heads (3)"),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), CROSS)
def test_cross_check_names_key_set_last(tmp_path: Path, text: str, line: int, key: str, fragment: str) -> None:
    overlay = write(tmp_path, "over.yaml", text)
    message = error(PARAMS, overlay)
    assert message.startswith(f"{overlay}:{line}: {key}: "), message
    assert fragment in message


def test_cross_checks_pass_at_their_boundary(tmp_path: Path) -> None:
    text = "task: {min_steps: 5, max_steps: 5, value_max: 198}\neval: {pass_k: [1, 2]}\nrl: {minibatches: 64}\n"
    load_params([PARAMS, write(tmp_path, "edge.yaml", text)])


# --- dict helpers and argparse ------------------------------------------------------------------


def test_params_to_dict_is_plain_json() -> None:
    data = params_to_dict(load_params([PARAMS]))
    assert list(data) == sections()
    assert data["study"]["seeds"] == [0, 1, 2, 3, 4]
    assert json.loads(json.dumps(data)) == data


def test_select_returns_nested_subset() -> None:
    data = params_to_dict(load_params([PARAMS]))
    picked = select(data, ["task", "rl.lr", "rl.steps", "eval.pass_k"])
    assert picked == {
        "task": data["task"],
        "rl": {"lr": data["rl"]["lr"], "steps": data["rl"]["steps"]},
        "eval": {"pass_k": data["eval"]["pass_k"]},
    }
    picked["task"]["seed"] = -1  # a copy: the source is untouched
    assert data["task"]["seed"] != -1
    assert select(data, ["rl.lr", "rl"]) == select(data, ["rl", "rl.lr"]) == {"rl": data["rl"]}


@pytest.mark.parametrize("key", ["rl.lrr", "nope", "rl.lr.x"])
def test_select_unknown_key(key: str) -> None:
    with pytest.raises(KeyError, match="unknown params key"):
        select(params_to_dict(load_params([PARAMS])), [key])


def test_params_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_params_argument(parser)
    overlay = write(tmp_path, "o.yaml", "rl: {steps: 2}\n")
    args = parser.parse_args(["--params", str(PARAMS), "--params", str(overlay), "--set", "rl.lr=0.25"])
    assert params_from_args(args) == load_params([PARAMS, overlay], ["rl.lr=0.25"])
    monkeypatch.chdir(REPO)
    args = parser.parse_args([])
    assert args.params is None and params_from_args(args) == load_params([PARAMS])


def test_overrides_apply_after_every_file_and_read_values_as_yaml(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", "rl: {steps: 2, lr: 0.5}\n")
    merged = load_params([PARAMS, overlay], ["rl.lr=1e-4", "study.seeds=[3, 4]", "task.op_weights.*=0"])
    assert (merged.rl.steps, merged.rl.lr, merged.study.seeds) == (2, 1e-4, (3, 4))
    assert merged.task.op_weights["*"] == 0.0


@pytest.mark.parametrize("item, fragment", [
    ("rl.lr", "expected KEY=VALUE"),
    ("rl..lr=1", "expected KEY=VALUE"),
    ("rl.lr=[1", "invalid YAML value"),
    ("rl.lrr=1", "rl.lrr: unknown key"),
    ("rl.lr=abc", "rl.lr: 'abc' is not of type 'number'"),
])
def test_bad_override_is_named(item: str, fragment: str) -> None:
    with pytest.raises(ParamsError) as info:
        load_params([PARAMS], [item])
    assert str(info.value).startswith(f"override {item}: ") and fragment in str(info.value), info.value


def test_snakemake_config_becomes_overrides() -> None:
    # Snakemake reads `--config rl='{lr: 1e-4, steps: 3}' seeds_=...` nested leaves as strings.
    overrides = config_overrides({"rl": {"lr": "1e-4", "steps": "3"}, "study": {"seeds": ["0", "1"]}})
    assert overrides == ["rl.lr=1e-4", "rl.steps=3", "study.seeds=[0, 1]"]
    params = load_params([PARAMS], overrides)
    assert (params.rl.lr, params.rl.steps, params.study.seeds) == (1e-4, 3, (0, 1))


def test_results_root_per_configuration(tmp_path: Path) -> None:
    base = str(PARAMS)
    same = write(tmp_path, "noop.yaml", f"rl: {{lr: {load_params([PARAMS]).rl.lr}}}\n")
    lr = write(tmp_path, "lr.yaml", "rl: {lr: 0.001}\n")
    named = write(tmp_path, "named.yaml", "study: {name: smoke}\nrl: {lr: 0.001}\n")
    root = lambda files, overrides=(): results_root([base, *files], overrides, load_params([base, *files], overrides))  # noqa: E731
    assert root([]) == root([same]) == "results"  # an overlay that changes nothing shares the study's root
    assert root([lr]) == "results/lr" and root([], ["rl.lr=1e-3"]) == "results/rl.lr=1e-3"
    assert root([named]) == root([named, same]) == "results/smoke"
    assert root([lr], ["model.pretrained=/a b"]) == "results/lr+model.pretrained=_a_b"
    # A derived name is a plain name too: an overlay `..yaml` (stem `.`) or `.hidden.yaml` writes no `results/.`.
    assert root([write(tmp_path, "..yaml", "rl: {lr: 0.001}\n")]) == "results/_"
    assert root([write(tmp_path, ".hidden.yaml", "rl: {lr: 0.001}\n")]) == "results/_hidden"


@pytest.mark.parametrize("name", ["smoke", "qwen2.5-14b", "rl.lr=1e-3+steps=80", "_scratch", "A1"])
def test_study_name_takes_plain_names_and_derived_ones(tmp_path: Path, name: str) -> None:
    overlay = write(tmp_path, "named.yaml", f"study: {{name: '{name}'}}\n")
    params = load_params([PARAMS, overlay])
    assert results_root([str(PARAMS), str(overlay)], (), params) == f"results/{name}"


@pytest.mark.parametrize("name", [".", "..", "../x", "a/b", "a\\b", "/abs", ".hidden", "", "-x", "a b", "x" * 101])
def test_study_name_is_never_a_path(tmp_path: Path, name: str) -> None:
    # results/NAME must be one new directory: not results/ itself, the repo root or anywhere else.
    overlay = write(tmp_path, "named.yaml", f"study:\n  name: '{name}'\n")
    message = error(PARAMS, overlay)
    assert message.startswith(f"{overlay}:2: study.name: ") and len(message.splitlines()) == 1, message


# --- CLI ----------------------------------------------------------------------------------------


def test_merge_round_trip_equals_base_plus_overlay(tmp_path: Path) -> None:
    overlay = write(
        tmp_path,
        "smoke.yaml",
        "study: {seeds: [5]}\ntask:\n  n_train: 64\n  op_weights: {'*': 2.5}\nrl: {steps: 2, lr: 3e-4}\n",
    )
    out = tmp_path / "gen" / "params.yaml"
    assert main(["merge", str(PARAMS), str(overlay), "-o", str(out)]) == 0
    assert load_params([out]) == load_params([PARAMS, overlay])
    text = out.read_text()
    assert text.startswith("#") and str(PARAMS) in text.splitlines()[0] and str(overlay) in text.splitlines()[0]
    assert list(yaml.safe_load(text)) == sections()
    assert list(yaml.safe_load(text)["rl"]) == list(SCHEMA["properties"]["rl"]["properties"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["params.yaml"]  # no temp file left


def test_merge_of_invalid_params_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = write(tmp_path, "bad.yaml", "rl: {lr: 0}\n")
    out = tmp_path / "out.yaml"
    assert main(["merge", str(PARAMS), str(overlay), "-o", str(out)]) == 2
    assert not out.exists()
    assert f"{overlay}:1: rl.lr:" in capsys.readouterr().err


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "resetrl.core.config", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_check_cli(tmp_path: Path) -> None:
    good = run_cli("check", str(PARAMS))
    assert (good.returncode, good.stdout.strip()) == (0, "ok")
    bad = write(tmp_path, "bad.yaml", "rl:\n  steps: -3\n")
    result = run_cli("check", str(PARAMS), str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"{bad}:2: rl.steps: ")


def test_arm_overlay_fills_missing_keys_from_the_arm_of_that_name(tmp_path: Path) -> None:
    overlay = write(tmp_path, "arms.yaml", "arms:\n  grpo: {kl_coef: 0.1}\n  mine: {family: reset, selector: self}\n")
    params = load_params([overlay])
    assert params.arms["grpo"].kl_coef == 0.1 and params.arms["grpo"].loss == "clip_token_mean"
    assert params.arms["mine"].selector == "self" and params.arms["mine"].loss == "pg_seq_mean"
    assert set(load_params([PARAMS]).arms) < set(params.arms)  # defaults kept, new arm added


def test_a_stage_reads_only_its_declared_keys() -> None:
    params = load_params(PARAMS)
    view = DeclaredParams(params, ("rl", "task.slip_rate", "arms.srpo"), "demo")
    assert view.rl is params.rl  # a fully declared section is the section itself
    assert view.task.slip_rate == params.task.slip_rate
    assert view.arms["srpo"] is params.arms["srpo"] and "grpo" in view.arms
    for read in (lambda: view.model, lambda: view.task.n_train, lambda: view.arms["grpo"]):
        with pytest.raises(UndeclaredKeyError, match="stage demo reads params key (model|task.n_train|arms.grpo)"):
            read()
    # What a stage's digests and fingerprints cover: its declared keys only.
    assert params_to_dict(view) == {"rl": params_to_dict(params)["rl"], "task": {"slip_rate": params.task.slip_rate},
                                    "arms": {"srpo": params_to_dict(params)["arms"]["srpo"]}}


def test_every_stage_runs_with_its_declared_keys() -> None:
    from resetrl.stages import STAGES, declared_params, stage_params

    params = load_params(PARAMS)
    for stage in STAGES:
        view = declared_params(params, stage, "srpo")
        assert set(params_to_dict(view)) == {key.split(".")[0] for key in stage_params(stage, "srpo")}
