"""`run CONFIG [CONFIG ...]`: find config files (a path or a bundled name), merge them, print them.

* A CONFIG is a YAML path, or the name of a config shipped with the tool (`translate_en_fr`,
  `translate_en_fr.yaml`, `examples/translate_tsv`): the checkout's top-level `configs/` folder,
  which an installed copy carries as the package data `pipeline.configs` (pyproject.toml maps
  the folder there, so there is one copy of each file). A path that exists wins over a name.
* Several files merge left to right, as OpenNMT-tf's `onmt-main --config a.yml b.yml`: mappings
  merge key by key at every depth, any other value (lists included) is replaced by the later
  file's; `--set` overrides apply after the merge; the result is validated once.
* `resolved_yaml` is what `run --print-config` prints: every key after defaults, merge and `--set`.
"""
from __future__ import annotations

import copy
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from pipeline.config import ConfigError, apply_override, parse_config

BUNDLED_PACKAGE = "pipeline.configs"  # installed copies (pyproject.toml: package-dir)
_CHECKOUT = Path(__file__).resolve().parents[1]  # the repo root when run from a checkout


def bundled_dir() -> Traversable | None:
    """The bundled configs: the checkout's configs/ folder, else the installed package data."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "configs").is_dir():
        return _CHECKOUT / "configs"
    try:
        return resources.files(BUNDLED_PACKAGE)
    except ModuleNotFoundError:
        return None


def bundled_names() -> list[str]:
    """Names `run` accepts instead of a path (top-level configs; examples/ too, as examples/NAME)."""
    root = bundled_dir()
    if root is None:
        return []
    names = [f.name[:-5] for f in root.iterdir() if f.name.endswith(".yaml")]
    examples = root / "examples"
    if examples.is_dir():
        names += [f"examples/{f.name[:-5]}" for f in examples.iterdir() if f.name.endswith(".yaml")]
    return sorted(names)


def resolve(spec: str) -> tuple[str, str]:
    """(YAML text, where it came from) for a path or a bundled name."""
    path = Path(spec)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    root = bundled_dir()
    name = spec[:-5] if spec.endswith(".yaml") else spec
    name = name[len("configs/"):] if name.startswith("configs/") else name
    if root is not None and "/" not in name.replace("examples/", "", 1) and ".." not in name:
        candidate = root
        for part in f"{name}.yaml".split("/"):  # one part per call: MultiplexedPath takes one on 3.11
            candidate = candidate / part
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8"), f"{name} (bundled)"
    raise ConfigError(f"config file not found: {spec} (nor a bundled config; bundled: "
                      f"{', '.join(bundled_names()) or 'none'})")


def deep_merge(base: dict, update: dict) -> dict:
    """`update` merged into a copy of `base`: mappings key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw(specs: list[str] | tuple[str, ...]) -> tuple[dict, str]:
    """The merged mapping of the files and a description of the sources."""
    merged: dict = {}
    sources = []
    for spec in specs:
        text, source = resolve(spec)
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config {source} is not valid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"invalid config {source}: the top level must be a mapping of keys")
        merged = deep_merge(merged, raw)
        sources.append(source)
    return merged, " + ".join(sources)


def load_configs(specs: list[str] | tuple[str, ...], overrides: list[str] | tuple = ()):
    """Read, merge left to right, apply `--set` overrides, validate (TranslateConfig | LMConfig)."""
    if isinstance(specs, (str, Path)):
        specs = [str(specs)]
    raw, source = load_raw(specs)
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse_config(raw, source)


def resolved_yaml(cfg) -> str:
    """The validated config as YAML, every key (defaults included), in schema order."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120)
