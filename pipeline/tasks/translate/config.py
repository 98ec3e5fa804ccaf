"""The translator's config schema (`task: translate`, the default): data, text, model, train, evaluate."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.training.spec import OptimizerSpec
from pipeline.config_base import (
    _FILES_KEYS,
    DistributeOptions,
    PipelineBase,
    Section,
    TensorBoardOptions,
    TfdsSplits,
    _check_source,
)
from pipeline.tasks.translate.decode_spec import DecodeSpec


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
    attention_scaled: bool = Field(
        False, description="divide the attention scores by sqrt(units) (scaled dot product): the softmax "
                           "stays soft while the alignment is learned; no new weights")
    residual: bool = Field(
        False, description="residual connections around every stacked LSTM layer above the first "
                           "(GNMT); deep stacks train faster, layer count and cuDNN eligibility unchanged")
    backward_dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32", description="bfloat16: training computes the gradient matmuls of the output projection and "
                               "of every LSTM outside its recurrence in bf16 (forward, loss, softmax and weights "
                               "stay float32): faster where the CPU has AVX512-BF16/AMX, slower where it does "
                               "not; auto: bfloat16 on such a CPU, else float32; evaluation and export are "
                               "float32 either way")


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
    plateau_factor: float = Field(0.5, gt=0, lt=1,
                                  description="lr_schedule plateau: lr multiplier when val loss stalls")
    plateau_patience: int = Field(1, ge=0, description="lr_schedule plateau: epochs without improvement before "
                                                       "the lr drops")
    bucket_boundaries: list[int] = Field(default_factory=lambda: [8, 16, 32],
                                         description="length buckets (in tokens) for batching similar-length pairs; "
                                                     "[] batches without bucketing")
    shuffle_buffer: int = Field(10000, ge=1, description="tf.data shuffle buffer of the training pairs")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap batches per epoch (tests); null: whole split")
    jit_compile: bool = Field(False, description="XLA-compile the train step; slower for these LSTMs on CPU")
    average_last_epochs: int | None = Field(None, ge=2, description="end with the mean of the weights of the "
                                                                    "last N epochs (checkpoint averaging); null: off")

    @model_validator(mode="after")
    def _averaging_fits(self):
        n = self.average_last_epochs
        if n is not None and n > self.epochs:
            raise ValueError(f"train.average_last_epochs={n} is more than train.epochs={self.epochs}; "
                             f"allowed: 2..{self.epochs} or null")
        if n is not None and self.early_stopping_patience:
            raise ValueError("train.average_last_epochs and train.early_stopping_patience are both set: early "
                             "stopping restores one epoch's weights, averaging replaces them; set one to null")
        return self

    @model_validator(mode="after")
    def _one_warmup(self):
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError("train.warmup_steps and train.warmup_fraction are both set; "
                             "give the warm-up one way, e.g. --set train.warmup_steps=null to use the fraction")
        if self.warmup_steps is None and self.warmup_fraction is None:
            self.warmup_steps = 1000
        return self

    def optimizer_spec(self) -> OptimizerSpec:
        return OptimizerSpec(self.optimizer, self.learning_rate, self.clipnorm, self.lr_schedule,
                             self.warmup_steps, self.warmup_fraction)


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

    def decode_spec(self) -> DecodeSpec:
        """How evaluate decodes and the export serves: framing from `text`, search from `evaluate`."""
        return DecodeSpec(self.text.max_source_len, self.evaluate.max_decode_len, self.evaluate.beam_size,
                          self.evaluate.length_penalty, self.text.reverse_source)

