"""The language model's config schema (`task: lm`): data, text, model, train, evaluate."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.training.spec import OptimizerSpec
from pipeline.config_base import DistributeOptions, PipelineBase, Section, TensorBoardOptions, TfdsSplits, _check_source


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
                            "Jean et al. 2015) for large vocabularies; evaluation and export always use the full "
                            "softmax")
    sampled_softmax_samples: int = Field(1024, ge=1,
                                         description="negative classes per training batch (sampled softmax)")
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

    def optimizer_spec(self) -> OptimizerSpec:
        return OptimizerSpec(self.optimizer, self.learning_rate, self.clipnorm)


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

