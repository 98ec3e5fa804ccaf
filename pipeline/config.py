"""Experiment configs: YAML files validated into typed objects at load time.

Validation is done by pydantic (strict schemas, unknown keys forbidden) so a typo
fails before any work starts, with the offending key and the allowed values named.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.tracking.params import flatten  # noqa: F401  (re-exported: configs flatten to params)


class ConfigError(ValueError):
    """A config file or override is invalid; the message is meant for the user."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParallelFilesSpec(Section):
    """One split of a user's parallel corpus: `source` + `target` files, or one `tsv`."""
    source: str | None = Field(None, description="source-language file, one sentence per line (.gz allowed)")
    target: str | None = Field(None, description="target-language file, line-aligned with source")
    tsv: str | None = Field(None, description="tab-separated file holding both languages")
    source_column: int = Field(0, ge=0, description="tsv column of the source sentence, from 0")
    target_column: int = Field(1, ge=0, description="tsv column of the target sentence, from 0")

    def check(self, key: str) -> None:
        if self.tsv and (self.source or self.target):
            raise ValueError(f"{key}: give either tsv or source + target, not both")
        if not self.tsv and not (self.source and self.target):
            missing = "target" if self.source else "source"
            raise ValueError(f"{key}.{missing} is required (or give {key}.tsv with source_column/target_column)")
        if self.tsv and self.source_column == self.target_column:
            raise ValueError(f"{key}.source_column and target_column must differ")
        if not self.tsv and {"source_column", "target_column"} & self.model_fields_set:
            raise ValueError(f"{key}.source_column/target_column only apply with {key}.tsv")


class TfdsSplits(Section):
    """Our split -> the TFDS split (any split spec: `validation`, `train[:5%]`, `newstest2013`)."""
    train: str = Field("train", description="TFDS split (or slice) read as our training split")
    validation: str = Field("validation", description="TFDS split (or slice) read as our validation split")
    test: str = Field("test", description="TFDS split (or slice) read as our test split")


# Keys that belong to one kind of data source; the others must be absent.
_FILES_KEYS = ("train", "validation", "test")
_TFDS_KEYS = ("name", "splits", "tfds_data_dir")


def _check_source(data, builtin: tuple[str, ...], section: str = "data") -> None:
    """Reject keys that do not belong to `data.corpus` (one message naming the key)."""
    given = data.model_fields_set
    corpus = data.corpus
    if corpus != "files":
        for key in _FILES_KEYS:
            if key in given and getattr(data, key) is not None:
                raise ValueError(f"{section}.{key} is only for corpus: files (corpus is {corpus!r})")
    if corpus != "tfds":
        for key in _TFDS_KEYS:
            if key in given and getattr(data, key) is not None:
                raise ValueError(f"{section}.{key} is only for corpus: tfds (corpus is {corpus!r})")
    if corpus in ("files", "tfds"):
        if data.config is not None:
            raise ValueError(f"{section}.config is only for the built-in corpora ({', '.join(builtin)}); "
                             f"remove it for corpus: {corpus}")
        if "data_dir" in given and data.data_dir is not None:
            hint = "give file paths in data.train/validation/test" if corpus == "files" else "use data.tfds_data_dir"
            raise ValueError(f"{section}.data_dir is only for the built-in corpora; {hint}")
    if corpus == "files" and data.train is None:
        raise ValueError(f"{section}.train is required when {section}.corpus is files")
    if corpus == "tfds" and not data.name:
        raise ValueError(f"{section}.name is required when {section}.corpus is tfds "
                         "(a TFDS catalog name, e.g. wmt14_translate/de-en)")


class DataConfig(Section):
    """Where the translator's sentence pairs come from.

    tatoeba / multi30k: the built-in corpora in `data_dir`. files: the user's files per
    split (paths relative to the current folder, ~ expands). tfds: a TFDS catalog dataset
    read from `tfds_data_dir` (downloaded and prepared there on first use when online).
    """
    corpus: Literal["tatoeba", "multi30k", "files", "tfds"] = Field(
        "tatoeba", description="tatoeba / multi30k: built-in corpora; files: your own files; "
                               "tfds: a TFDS catalog dataset")
    config: str | None = Field(None, description="built-in corpus config; tatoeba: urd-eng (default) or fra-eng")
    source_lang: str = Field("en", description="source language code; for files/tfds also the feature name")
    target_lang: str = Field("ur", description="target language code; for files/tfds also the feature name")
    data_dir: str | None = Field(None, description="raw corpora folder; default $PIPELINE_DATA_DIR")
    max_train_examples: int | None = Field(None, ge=1, description="use only the first N training pairs")
    train: ParallelFilesSpec | None = Field(None, description="corpus files: the training pairs (required)")
    validation: ParallelFilesSpec | None = Field(None, description="corpus files: default = 10% of train by hash")
    test: ParallelFilesSpec | None = Field(None, description="corpus files: default = 10% of train by hash")
    name: str | None = Field(None, description="corpus tfds: catalog name, e.g. wmt14_translate/de-en")
    splits: TfdsSplits | None = Field(None, description="corpus tfds: our split -> TFDS split")
    tfds_data_dir: str | None = Field(None, description="corpus tfds: TFDS data dir; default $TFDS_DATA_DIR "
                                                        "or ~/tensorflow_datasets")

    @model_validator(mode="before")
    @classmethod
    def _default_config(cls, raw):
        # Tatoeba needs a language pair; no other source has configs.
        if isinstance(raw, dict) and raw.get("corpus", "tatoeba") == "tatoeba" and "config" not in raw:
            raw = {**raw, "config": "urd-eng"}
        return raw

    @model_validator(mode="after")
    def _check(self):
        _check_source(self, ("tatoeba", "multi30k"))
        for split in _FILES_KEYS:
            spec = getattr(self, split)
            if spec is not None:
                spec.check(f"data.{split}")
        return self


class TextConfig(Section):
    tokenizer: Literal["word", "whitespace", "char", "wordpiece"] = Field(
        "word", description="wordpiece: subwords, max_vocab_size is the learned vocabulary size")
    lowercase: bool = Field(False, description="lowercase both languages before tokenizing")
    max_vocab_size: int = Field(20000, ge=8, description="cap on each language's vocabulary, specials included")
    min_count: int = Field(1, ge=1, description="rarer training tokens map to <unk>")
    max_source_len: int = Field(50, ge=2, description="source tokens kept per sentence, <eos> included "
                                                      "(longer sentences are truncated)")
    max_target_len: int = Field(50, ge=2, description="target tokens kept per sentence in training, "
                                                      "<eos> included (longer sentences are truncated)")
    reverse_source: bool = Field(
        False, description="feed source tokens in reverse order (Sutskever et al. 2014); "
                           "helps models without attention, the export applies it too")


class TranslatorModelConfig(Section):
    embedding_dim: int = Field(256, ge=1, description="embedding width, source and target")
    units: int = Field(256, ge=1, description="width of every LSTM layer")
    encoder_layers: int = Field(2, ge=1, description="stacked encoder LSTM layers (the seed: 2)")
    decoder_layers: int = Field(3, ge=1, description="stacked decoder LSTM layers (the seed: 3)")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="on embeddings, between layers and after attention; "
                                                            "never inside the recurrence (keeps cuDNN)")
    bridge: Literal["top_to_first", "layerwise", "dense"] = Field(
        "top_to_first",
        description="how encoder final states initialise the decoder; the seed uses top_to_first",
    )
    attention: Literal["none", "dot", "general"] = Field(
        "none", description="Luong global attention over the encoder top layer's outputs (score)")
    residual: bool = Field(
        False, description="residual connections around every stacked LSTM layer above the first "
                           "(GNMT); deep stacks train faster, layer count and cuDNN eligibility unchanged")


class DistributeOptions(Section):
    """Data-parallel training through tf.distribute; shared by both tasks' `train` sections."""
    distribute: Literal["default", "mirrored", "multi_worker", "one_device"] = Field(
        "default", description="default: one device; mirrored: this machine's GPUs (or train.devices / "
                               "train.logical_cpus); multi_worker: the cluster in $TF_CONFIG")
    devices: list[str] | None = Field(None, description="mirrored: device names, e.g. [/gpu:0, /gpu:1]")
    logical_cpus: int | None = Field(None, ge=2, description="split the CPU into N logical devices "
                                                             "(to try data parallelism without GPUs)")

    @model_validator(mode="after")
    def _check_distribute(self):
        if self.jit_compile and self.distribute in ("mirrored", "multi_worker"):
            raise ValueError(f"train.jit_compile: true is not supported with train.distribute: {self.distribute} "
                             "(Keras' XLA train step does not compile under a multi-replica strategy here); "
                             "set jit_compile: false, or distribute: default")
        if self.devices and self.distribute not in ("mirrored", "one_device"):
            raise ValueError("train.devices applies to distribute: mirrored or one_device, "
                             f"not {self.distribute!r}")
        return self


class TensorBoardOptions(Section):
    """Keras TensorBoard logs of training; shared by both tasks' `train` sections."""
    tensorboard: bool = Field(False, description="write TensorBoard logs (the per-epoch scalars MLflow gets) "
                                                 "under the train stage's output, tensorboard/; also logged to MLflow")
    profile_batches: list[int] | None = Field(
        None, min_length=2, max_length=2,
        description="with tensorboard: profile batches [first, last] of the first epoch (TF profiler); null: none")

    @model_validator(mode="after")
    def _check_profile(self):
        if self.profile_batches is not None:
            first, last = self.profile_batches
            if not self.tensorboard:
                raise ValueError("train.profile_batches needs train.tensorboard: true")
            if first < 1 or last < first:
                raise ValueError(f"train.profile_batches: [{first}, {last}] must satisfy 1 <= first <= last")
        return self


class TrainConfig(DistributeOptions, TensorBoardOptions):
    epochs: int = Field(30, ge=1, description="maximum training epochs")
    batch_size: int = Field(32, ge=1, description="global batch: split across replicas when distributed")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="the optimizer")
    learning_rate: float = Field(2e-3, gt=0, description="peak learning rate (after any warm-up)")
    clipnorm: float | None = Field(1.0, gt=0, description="global gradient-norm clipping; null: none")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing of the masked cross-entropy")
    early_stopping_patience: int | None = Field(None, ge=1, description="stop after N epochs without a better "
                                                                      "early_stopping_metric and restore the best "
                                                                      "epoch's weights; null: off")
    early_stopping_metric: Literal["val_loss", "val_bleu"] = Field(
        "val_loss", description="also what decides the best checkpoint that is kept")
    val_bleu_examples: int = Field(0, ge=0, description="validation pairs decoded each epoch for val_bleu "
                                                        "(0 = only when early stopping on it, then 500)")
    lr_schedule: Literal["constant", "plateau", "warmup_cosine", "warmup_rsqrt"] = Field(
        "constant", description="plateau: lr *= plateau_factor when val loss stalls; "
                                "warmup_cosine: linear warmup then cosine decay over all epochs; "
                                "warmup_rsqrt: linear warmup then lr * sqrt(warmup / step)")
    warmup_steps: int | None = Field(None, ge=0, description="warm-up length in optimizer steps "
                                                               "(default 1000 unless warmup_fraction is set)")
    warmup_fraction: float | None = Field(None, ge=0, lt=1, description="warm-up as a fraction of all "
                                                                        "training steps (scales with epochs)")
    plateau_factor: float = Field(0.5, gt=0, lt=1, description="lr_schedule plateau: lr multiplier when val loss stalls")
    plateau_patience: int = Field(1, ge=0, description="lr_schedule plateau: epochs without improvement before "
                                                       "the lr drops")
    bucket_boundaries: list[int] = Field(default_factory=lambda: [8, 16, 32],
                                         description="length buckets (in tokens) for batching similar-length pairs; "
                                                     "[] batches without bucketing")
    shuffle_buffer: int = Field(10000, ge=1, description="tf.data shuffle buffer of the training pairs")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap batches per epoch (tests); null: whole split")
    jit_compile: bool = Field(False, description="XLA-compile the train step; slower for these LSTMs on CPU")

    @model_validator(mode="after")
    def _one_warmup(self):
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError("train.warmup_steps and train.warmup_fraction are both set; "
                             "give the warm-up one way, e.g. --set train.warmup_steps=null to use the fraction")
        if self.warmup_steps is None and self.warmup_fraction is None:
            self.warmup_steps = 1000
        return self


class EvaluateConfig(Section):
    batch_size: int = Field(64, ge=1, description="sentences decoded per batch")
    max_decode_len: int = Field(60, ge=1, description="maximum output tokens per translation (evaluate and export)")
    num_samples: int = Field(5, ge=0, description="test samples printed to the console")
    bleu_tokenize: Literal["13a", "intl", "char", "none", "flores200"] = Field(
        "13a", description="sacreBLEU tokenizer; recorded in the export for the evaluate command")
    examples: list[str] = Field(default_factory=lambda: ["How are you?"],
                                description="sentences translated and printed in the run summary")
    max_test_examples: int | None = Field(None, ge=1, description="score only the first N test pairs; null: all")
    train_sample_size: int = Field(200, ge=0, description="training pairs decoded to show how well they are fit")
    beam_size: int = Field(1, ge=1, le=64, description="1 = greedy decoding; also what the export serves")
    length_penalty: float = Field(0.6, ge=0.0, description="GNMT alpha: score / ((5+len)/6)**alpha")


class ExportConfig(Section):
    model_name: str | None = Field(None, description="defaults to the config's name")
    export_dir: str = Field("exports", description="exports go to <export_dir>/<model_name>/<version>/")


class MlflowConfig(Section):
    experiment: str | None = Field(None, description="defaults to the config's name")
    tracking_uri: str | None = Field(None, description="default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")


class PipelineBase(Section):
    """What every task's config has: a name, where outputs go, export and tracking."""
    name: str = Field(description="the experiment's name: default model name, MLflow experiment, work folder")
    seed: int = Field(42, description="random seed for weights, shuffling and sampling")
    work_dir: str = Field("work", description="stage outputs go to <work_dir>/<name>/<stage>/")
    export: ExportConfig = Field(default_factory=ExportConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)

    @property
    def model_name(self) -> str:
        return self.export.model_name or self.name

    @property
    def experiment(self) -> str:
        return self.mlflow.experiment or self.name


class TranslateConfig(PipelineBase):
    task: Literal["translate"] = Field("translate", description="which task's schema applies "
                                                               "(translate when absent)")
    data: DataConfig = Field(default_factory=DataConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    model: TranslatorModelConfig = Field(default_factory=TranslatorModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)

    @model_validator(mode="after")
    def _check(self):
        if self.data.source_lang == self.data.target_lang:
            raise ValueError("data.source_lang and data.target_lang must differ")
        return self


# ---------------------------------------------------------------- language model (task: lm)

class LMDataConfig(Section):
    """Where the language model's text comes from.

    tiny_shakespeare: built in. files: train/validation/test text files (PTB/WikiText
    layout; a missing validation/test is cut from the end of train). tfds: a TFDS text
    dataset's `text_feature`, each example split into lines.
    """
    corpus: Literal["tiny_shakespeare", "files", "tfds"] = Field(
        "tiny_shakespeare", description="tiny_shakespeare: built in; files: your own text files; "
                                        "tfds: a TFDS catalog text dataset")
    config: str | None = Field(None, description="TFDS builder config (tiny_shakespeare has none)")
    data_dir: str | None = Field(None, description="raw corpora folder; default $PIPELINE_DATA_DIR")
    max_train_lines: int | None = Field(None, ge=1, description="use only the first N training lines")
    max_eval_lines: int | None = Field(None, ge=1, description="use only the first N validation/test lines")
    train: str | None = Field(None, description="corpus files: training text file (.gz allowed)")
    validation: str | None = Field(None, description="corpus files: default = lines cut from the end of train")
    test: str | None = Field(None, description="corpus files: default = lines cut from the end of train")
    name: str | None = Field(None, description="corpus tfds: catalog name, e.g. lm1b")
    splits: TfdsSplits | None = Field(None, description="corpus tfds: our split -> TFDS split")
    tfds_data_dir: str | None = Field(None, description="corpus tfds: TFDS data dir; default $TFDS_DATA_DIR "
                                                        "or ~/tensorflow_datasets")
    text_feature: str = Field("text", description="corpus tfds: the feature holding the text")

    @model_validator(mode="after")
    def _check(self):
        _check_source(self, ("tiny_shakespeare",))
        if "text_feature" in self.model_fields_set and self.corpus != "tfds":
            raise ValueError("data.text_feature is only for corpus: tfds")
        return self


class LMTextConfig(Section):
    tokenizer: Literal["whitespace", "char"] = Field(
        "whitespace", description="whitespace: line.split() + <eos> per line (the classic PTB/WikiText "
                                  "convention); char: every character, a newline per line end")
    lowercase: bool = Field(False, description="lowercase before tokenizing")
    min_count: int = Field(1, ge=1, description="rarer training tokens map to <unk>")
    max_vocab_size: int | None = Field(None, ge=8, description="cap, specials included; none by default")


class LMModelConfig(Section):
    embedding_dim: int = Field(200, ge=1, description="p1")
    units: int = Field(200, ge=1, description="p2, the width of every LSTM layer")
    layers: int = Field(2, ge=1, description="N stacked LSTM layers")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="after the embedding, between layers, before the output")
    tie_weights: bool = Field(False, description="output layer reuses the embedding matrix (Press & Wolf 2017)")
    softmax: Literal["full", "sampled"] = Field(
        "full", description="sampled: training loss over sampled_softmax_samples sampled classes (log-uniform, "
                            "Jean et al. 2015) for large vocabularies; evaluation and export always use the full softmax")
    sampled_softmax_samples: int = Field(1024, ge=1, description="negative classes per training batch (sampled softmax)")
    output_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: training computes the output projection's two gradient matmuls in bf16 "
                               "(forward logits, softmax and loss stay float32): faster on CPUs with AVX512-BF16/AMX "
                               "and on GPUs; evaluation and export always use float32")

    @model_validator(mode="after")
    def _check_softmax(self):
        if self.softmax == "sampled" and self.tie_weights:
            raise ValueError("model.softmax=sampled needs model.tie_weights=false (the sampled output layer "
                             "has its own weights)")
        if self.output_dtype == "bfloat16" and (self.tie_weights or self.softmax == "sampled"):
            raise ValueError("model.output_dtype=bfloat16 applies to the plain output projection only: it needs "
                             "model.tie_weights=false and model.softmax=full")
        return self


class LMTrainConfig(DistributeOptions, TensorBoardOptions):
    epochs: int = Field(6, ge=1, description="maximum training epochs")
    batch_size: int = Field(20, ge=1, description="number of contiguous streams (fixed: states carry per stream)")
    seq_len: int = Field(35, ge=1, description="truncated-BPTT window length")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="the optimizer (the classic script: sgd)")
    learning_rate: float = Field(20.0, gt=0, description="initial learning rate")
    clipnorm: float | None = Field(0.25, gt=0, description="global gradient-norm clipping")
    lr_decay_factor: float | None = Field(
        0.25, gt=0, lt=1, description="multiply lr by this when val loss does not improve; null disables")
    lr_decay_patience: int = Field(0, ge=0, description="epochs without improvement before the decay")
    early_stopping_patience: int | None = Field(None, ge=1, description="epochs without a better val perplexity")
    val_batch_size: int = Field(10, ge=1, description="streams for the per-epoch validation perplexity")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap windows per epoch (tests)")
    jit_compile: bool = Field(False, description="XLA-compile the train step; slower for these LSTMs on CPU")
    steps_per_execution: int = Field(
        32, ge=1, description="BPTT windows per compiled call: fewer Python round trips per epoch; "
                              "the windows still run in order, so states carry exactly as with 1")

    @model_validator(mode="after")
    def _check_streams_split(self):
        replicas = len(self.devices or ()) or (self.logical_cpus if self.distribute == "mirrored" else 0) or 1
        if self.batch_size % replicas:
            raise ValueError(f"train.batch_size ({self.batch_size}) must be a multiple of the {replicas} replicas: "
                             "each replica carries the state of an equal block of streams")
        return self


class LMEvaluateConfig(Section):
    batch_size: int = Field(10, ge=1, description="streams for val/test perplexity (the classic uses 10)")
    seq_len: int = Field(100, ge=1, description="window length; state carries, so it only affects speed")
    prompts: list[str] = Field(default_factory=lambda: ["ROMEO:", "First Citizen:\n"],
                               description="prompts of the printed samples (also the export check)")
    sample_tokens: int = Field(60, ge=0, description="tokens generated per sample")
    temperature: float = Field(0.8, ge=0.0, description="0 means greedy")
    top_k: int = Field(0, ge=0, description="0 means the whole vocabulary")


class LMConfig(PipelineBase):
    task: Literal["lm"] = Field("lm", description="which task's schema applies")
    data: LMDataConfig = Field(default_factory=LMDataConfig)
    text: LMTextConfig = Field(default_factory=LMTextConfig)
    model: LMModelConfig = Field(default_factory=LMModelConfig)
    train: LMTrainConfig = Field(default_factory=LMTrainConfig)
    evaluate: LMEvaluateConfig = Field(default_factory=LMEvaluateConfig)


PipelineConfig = Annotated[Union[TranslateConfig, LMConfig], Field(discriminator="task")]


def _task_configs() -> dict[str, type]:
    from pipeline.tasks import TASKS  # the task registry imports this module's classes
    return {name: task.config_cls for name, task in TASKS.items()}


# ---------------------------------------------------------------- loading

def apply_override(raw: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, value_text = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set has an empty key in {assignment!r}")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {key.strip()}: {value_text!r} is not a valid YAML value ({problem}); "
                          "quote strings, close brackets, e.g. --set 'train.bucket_boundaries=[8, 16]'") from None


def _allowed_keys(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the schema along an error location to list the keys allowed there."""
    cls = model_cls
    for part in loc[:-1]:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(field, "annotation", None)
        ann = next((a for a in getattr(ann, "__args__", ()) if a is not type(None)), ann)  # X | None -> X
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        cls = ann
    return sorted(cls.model_fields)


def _format_errors(err: ValidationError, model_cls: type[BaseModel], source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in _task_configs())  # drop discriminator tags
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model_cls, loc))
            lines.append(f"  {key}: unknown key; allowed keys here: {allowed}")
        else:
            got = e.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {e['msg']}{got_text}")
    return "\n".join(lines)


def parse_config(raw: dict, source: str = "<dict>") -> TranslateConfig | LMConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping of keys")
    task = raw.get("task", "translate")
    configs = _task_configs()
    if task not in configs:
        raise ConfigError(f"invalid config {source}:\n  task: unknown task {task!r}; allowed values: "
                          + ", ".join(repr(t) for t in configs))
    cls = configs[task]
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, cls, source)) from None


def load_config(path: str | Path, overrides: list[str] | tuple = ()) -> TranslateConfig | LMConfig:
    """Read a YAML config, apply `--set` overrides, and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        if isinstance(raw, dict):
            apply_override(raw, assignment)
    return parse_config(raw, str(path))
