"""Config sections every task shares: the base (name, seed, work_dir, export, mlflow), the
`train` options for distribution and TensorBoard, and the data-source key checks.

Task schemas (`pipeline/tasks/<task>/config.py`) build on these; the loader (`pipeline/config.py`)
finds the schemas through the task registry.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.tracking.params import flatten
from components.tracking.run_spec import RunSpec
from components.training.spec import StrategySpec


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)



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


    def strategy_spec(self) -> StrategySpec:
        """The tf.distribute settings as the typed value `distribute.make_strategy` takes."""
        return StrategySpec(self.distribute, tuple(self.devices or ()), self.logical_cpus)


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

    def run_spec(self) -> RunSpec:
        """What the MLflow tracker records about a run of this config (params: the flattened config)."""
        return RunSpec(self.name, self.task, self.model_name, self.experiment, flatten(self), self.mlflow.tracking_uri)

