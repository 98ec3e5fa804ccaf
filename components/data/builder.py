"""The base of the project's own TFDS builders: never registered, and a working `code_path`.

Two workarounds every builder here needs, written once:

* **No registration.** tfds ships its own `tatoeba` and `tiny_shakespeare`; registering a
  second class under the same name either shadows the built-in in `tfds.builder()` or makes
  importing it raise "already registered", and the generic user-file builders must never clash
  with catalog names. `components.data.loading` / `sources` construct the classes directly.
* **`code_path`.** tfds 4.9.10's default imports `importlib_resources`, which it only declares as
  a dependency for Python < 3.9 (tensorflow/datasets#11212), so building fails with
  ModuleNotFoundError. The answer is the file that defines the builder class.
"""

from __future__ import annotations

import inspect

import tensorflow_datasets as tfds
from etils import epath


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A `GeneratorBasedBuilder` that is never registered; subclass it like the tfds base."""

    def __init_subclass__(cls, **kwargs):
        kwargs["skip_registration"] = True  # every subclass, whatever it asks for
        super().__init_subclass__(**kwargs)

    code_path = tfds.core.utils.classproperty(classmethod(lambda cls: epath.Path(inspect.getfile(cls))))
