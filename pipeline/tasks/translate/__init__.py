"""The LSTM encoder-decoder translator (`task: translate`): everything it owns lives here.

config (schema), data (data adapter, batches), model + decoding + translate_fn (builder and
decoders), export (signatures), evaluation + bleu_callback, training (callbacks), inference +
commands (`translate`, `evaluate`), stages (prepare/train/evaluate/export and the run summary).
"""
from pipeline.tasks.base import Task
from pipeline.tasks.translate.config import TranslateConfig

TASK = Task("translate", TranslateConfig, "pipeline.tasks.translate.stages", ("test_bleu",),
            "pipeline.tasks.translate.commands", ("translate", "evaluate"))
