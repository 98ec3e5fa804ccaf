"""The registry's records agree with the task packages they name, without importing TensorFlow."""
import subprocess
import sys

from pipeline.tasks import TASKS, default_compare_metrics, task_of
from pipeline.use_commands import COMMANDS
from tests.support.subprocess_run import ROOT


def test_each_record_matches_its_package():
    assert list(TASKS) == ["translate", "lm"]
    for name, task in TASKS.items():
        assert task.config_cls.model_fields["task"].default == name
        assert tuple(task.commands().COMMANDS) == task.command_names
        assert task_of(task.config_cls(name="x")) is task
    assert COMMANDS == ("translate", "evaluate", "score", "generate")
    assert default_compare_metrics() == ("test_bleu", "test_perplexity", "val_perplexity", "val_loss")


def test_registry_and_config_loading_do_not_import_tensorflow():
    code = ("import sys; from pipeline.config import load_config; import pipeline.cli; "
            "from pipeline.tasks import TASKS; [t.commands() for t in TASKS.values()]; "
            "load_config('configs/test_lm_tiny.yaml'); print('tensorflow' in sys.modules, 'mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]
