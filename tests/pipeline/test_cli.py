"""The CLI rejects bad input before doing work, with messages that say what to fix."""
import os

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


# ---------------------------------------------------------------- pre-flight (issue 17): no TensorFlow start
def test_dead_tracking_server_is_one_line_naming_the_uri(tmp_path):
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={tmp_path}/w"],
                   env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "http://127.0.0.1:9" in proc.stderr, proc.stderr
    assert not (tmp_path / "w" / "test_translate_tiny" / "train").exists()


def test_unwritable_export_dir_fails_before_training(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={tmp_path}/w",
                    "--set", f"export.export_dir={tmp_path}/a_file/exports",
                    "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"], timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "a_file" in proc.stderr and "export folder" in proc.stderr
    assert "running" not in proc.stdout and not (tmp_path / "m.db").exists()


def test_malformed_set_value_is_one_line_exit_2():
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", "train.bucket_boundaries=[8,"], timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "train.bucket_boundaries" in proc.stderr, proc.stderr


def test_work_folder_lock_names_the_holder(tmp_path):
    from components.runtime.locks import WorkLock

    held = WorkLock(tmp_path / "w" / "test_translate_tiny").acquire("the test")
    try:
        proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={tmp_path}/w",
                        "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path}/m.db"], timeout=120)
    finally:
        held.release()
    assert proc.returncode == 1 and f"pid {os.getpid()}" in proc.stderr, proc.stderr


def test_unreadable_allocator_setting_is_one_line_exit_2():
    """TensorFlow would log and silently fall back to its default allocator; we refuse instead."""
    proc = run_cli(["run", "configs/translate_en_ur.yaml", "--print-config"], env={"TF_CPU_ALLOCATOR_USE_BFC": "yes"})
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "TF_CPU_ALLOCATOR_USE_BFC='yes'" in proc.stderr and "true, false, 1, 0" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
