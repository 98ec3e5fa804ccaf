"""The LSTM language model (`task: lm`): everything it owns lives here.

config (schema), data (data adapter, streams and windows), model + sampled_softmax (builder),
tbptt + training (state-carrying training and its callbacks), export (signatures), evaluation,
inference + commands (`score`, `generate`), stages (prepare/train/evaluate/export and the summary).
"""
from pipeline.tasks.base import Task
from pipeline.tasks.lm.config import LMConfig

TASK = Task("lm", LMConfig, "pipeline.tasks.lm.stages", ("test_perplexity", "val_perplexity"),
            "pipeline.tasks.lm.commands", ("score", "generate"))
