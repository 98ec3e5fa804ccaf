import pytest

from pipeline.config import ConfigError, apply_override, flatten, load_config, parse_config

CONFIG = "configs/translate_en_ur.yaml"


def test_seed_config_loads_with_seed_architecture():
    cfg = load_config(CONFIG)
    assert cfg.model.encoder_layers == 2 and cfg.model.decoder_layers == 3
    assert cfg.model.bridge == "top_to_first"
    assert cfg.data.source_lang == "en" and cfg.data.target_lang == "ur"


def test_set_overrides_parse_yaml_values():
    cfg = load_config(CONFIG, ["train.epochs=3", "train.learning_rate=0.01", "evaluate.examples=[a, b]"])
    assert cfg.train.epochs == 3 and cfg.train.learning_rate == 0.01
    assert cfg.evaluate.examples == ["a", "b"]


def _error(tmp_path, text, overrides=()):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_unknown_key_names_key_and_allowed_keys(tmp_path):
    msg = _error(tmp_path, "name: x\ntrain:\n  epoch: 3\n")
    assert "train.epoch" in msg and "unknown key" in msg
    assert "epochs" in msg and "learning_rate" in msg  # the allowed keys are listed


def test_bad_choice_names_allowed_values(tmp_path):
    msg = _error(tmp_path, "name: x\ntrain:\n  optimizer: adamw\n")
    assert "train.optimizer" in msg and "'adam'" in msg and "'sgd'" in msg and "adamw" in msg


def test_bad_type_and_range(tmp_path):
    msg = _error(tmp_path, "name: x\nmodel:\n  units: many\n  dropout: 1.5\n")
    assert "model.units" in msg and "model.dropout" in msg


def test_unknown_task_and_missing_name(tmp_path):
    assert "'translate'" in _error(tmp_path, "name: x\ntask: classify\n")
    assert "name" in _error(tmp_path, "task: translate\n")


def test_bad_override_key(tmp_path):
    msg = _error(tmp_path, "name: x\n", ["modle.units=3"])
    assert "modle" in msg and "unknown key" in msg


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.epochs")
    with pytest.raises(ConfigError, match="not a section"):
        apply_override({"name": "x"}, "name.sub=1")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_same_languages_rejected(tmp_path):
    assert "must differ" in _error(tmp_path, "name: x\ndata:\n  source_lang: en\n  target_lang: en\n")


def test_flatten_gives_dotted_keys():
    flat = flatten(load_config(CONFIG))
    assert flat["train.epochs"] == load_config(CONFIG).train.epochs
    assert "model.bridge" in flat and "name" in flat


# ---------------------------------------------------------------- own data sources (data.corpus files / tfds)

@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path("configs/examples").glob("*.yaml")))
def test_example_configs_load(path):
    cfg = load_config(path)
    assert cfg.data.corpus in ("files", "tfds")


def test_files_source_paths_per_split_and_tatoeba_keeps_its_default_pair():
    cfg = load_config(CONFIG, ["data.corpus=files", "data.config=null", "data.train.tsv=~/pairs.tsv",
                               "data.train.source_column=2", "data.validation.source=v.en",
                               "data.validation.target=v.ur"])
    assert cfg.data.train.tsv == "~/pairs.tsv" and cfg.data.train.source_column == 2
    assert cfg.data.validation.source == "v.en" and cfg.data.test is None
    assert load_config(CONFIG, ["data.config=null", "data.corpus=multi30k"]).data.config is None
    from pipeline.tasks.translate.config import DataConfig
    assert DataConfig().config == "urd-eng" and DataConfig(corpus="multi30k").config is None


@pytest.mark.parametrize("data, message", [
    ("corpus: files", "data.train is required when data.corpus is files"),
    ("corpus: files\n  train: {source: a.en}", "data.train.target is required"),
    ("corpus: files\n  train: {tsv: a.tsv, source: a.en}", "data.train: give either tsv or source + target"),
    ("corpus: files\n  train: {tsv: a.tsv, source_column: 1}",
     "data.train.source_column and target_column must differ"),
    ("corpus: files\n  train: {source: a, target: b, target_column: 3}", "only apply with data.train.tsv"),
    ("corpus: files\n  config: fra-eng\n  train: {tsv: a}", "data.config is only for the built-in corpora"),
    ("corpus: files\n  data_dir: x\n  train: {tsv: a}", "data.data_dir is only for the built-in corpora"),
    ("corpus: tatoeba\n  train: {tsv: a}", "data.train is only for corpus: files"),
    ("corpus: tfds", "data.name is required when data.corpus is tfds"),
    ("corpus: multi30k\n  tfds_data_dir: x", "data.tfds_data_dir is only for corpus: tfds"),
    ("corpus: tfds\n  name: x\n  splits: {dev: validation}",
     "data.splits.dev: unknown key; allowed keys here: test, train, validation"),
    ("corpus: files\n  train: {src: a}", "data.train.src: unknown key; allowed keys here: source, source_column"),
])
def test_translator_source_mistakes_name_the_key(tmp_path, data, message):
    assert message in _error(tmp_path, f"name: x\ndata:\n  {data}\n")


@pytest.mark.parametrize("data, message", [
    ("corpus: files", "data.train is required when data.corpus is files"),
    ("corpus: files\n  train: {source: a}", "data.train: Input should be a valid string"),
    ("corpus: tiny_shakespeare\n  text_feature: body", "data.text_feature is only for corpus: tfds"),
    ("corpus: wikitext", "data.corpus: Input should be 'tiny_shakespeare', 'files' or 'tfds'"),
])
def test_lm_source_mistakes_name_the_key(tmp_path, data, message):
    assert message in _error(tmp_path, f"name: x\ntask: lm\ndata:\n  {data}\n")


def test_jit_compile_with_a_multi_replica_strategy_is_rejected_at_load():
    with pytest.raises(ConfigError, match="jit_compile.*mirrored"):
        parse_config({"name": "x", "train": {"distribute": "mirrored", "jit_compile": True}})
    with pytest.raises(ConfigError, match="multiple of the 3 replicas"):
        parse_config({"name": "x", "task": "lm", "train": {"distribute": "mirrored", "logical_cpus": 3,
                                                           "batch_size": 20}})


def test_sections_resolve_to_the_typed_values_components_take():
    from components.training.spec import OptimizerSpec, StrategySpec

    tr = parse_config({"name": "t", "train": {"optimizer": "sgd", "learning_rate": 0.5, "clipnorm": None,
                                              "lr_schedule": "warmup_rsqrt", "warmup_steps": 7,
                                              "distribute": "mirrored", "devices": ["/cpu:0"]}})
    assert tr.train.optimizer_spec() == OptimizerSpec("sgd", 0.5, None, "warmup_rsqrt", 7, None)
    assert tr.train.strategy_spec() == StrategySpec("mirrored", ("/cpu:0",), None)
    lm = parse_config({"name": "l", "task": "lm", "export": {"model_name": "m"}, "mlflow": {"experiment": "e"}})
    assert lm.train.optimizer_spec() == OptimizerSpec("sgd", 20.0, 0.25)  # constant lr: no schedule keys
    run = lm.run_spec()
    assert (run.name, run.task, run.model_name, run.experiment) == ("l", "lm", "m", "e")
    assert run.params["train.seq_len"] == 35 and run.tracking_uri is None
