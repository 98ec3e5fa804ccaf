"""The CLI rejects bad input before doing work, with messages that say what to fix."""
from tests.support.subprocess_run import run_cli


def test_bad_config_key_exits_2_naming_key_and_allowed_values():
    proc = run_cli(["run", "configs/translate_en_ur.yaml", "--set", "train.optimizer=adamw"])
    assert proc.returncode == 2
    assert "train.optimizer" in proc.stderr and "'adam'" in proc.stderr and "'sgd'" in proc.stderr


def test_unknown_override_key():
    proc = run_cli(["run", "configs/translate_en_ur.yaml", "--set", "train.epoch=3"])
    assert proc.returncode == 2 and "train.epoch" in proc.stderr and "epochs" in proc.stderr


def test_missing_data_names_file_and_how_to_get_it(tmp_path):
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={tmp_path}/w",
                    "--set", f"data.data_dir={tmp_path}/nodata",
                    "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"])
    assert proc.returncode == 1
    assert "urd.txt" in proc.stderr and "manythings.org" in proc.stderr


def test_unknown_stage():
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--stages", "trian"])
    assert proc.returncode == 1 and "trian" in proc.stderr and "prepare" in proc.stderr
