"""Flags -> ServerConfig (components/serving/flags.py): TF Serving's names, defaults and errors."""

from __future__ import annotations

import dataclasses

import pytest

from components.serving import cli
from components.serving.config import BatchingConfig, ConfigError, Limits, ServerConfig
from components.serving.flags import build_arg_parser, parse_args


def test_flags_follow_tf_serving_defaults():
    cfg = parse_args(["--model_name=m", "--model_base_path=/tmp/x"])
    assert (cfg.port, cfg.rest_api_port, cfg.host) == (8500, 8501, "127.0.0.1")
    assert cfg.file_system_poll_wait_seconds == 1
    assert cfg.batching == BatchingConfig(enabled=False)
    assert cfg.limits == Limits()
    assert cfg.models[0].name == "m" and cfg.models[0].base_path == "/tmp/x"
    assert parse_args(["--model_base_path=/x", "--enable_batching=true"]).batching.enabled
    assert parse_args(["--model_base_path=/x", "--enable_batching"]).models[0].name == "default"


def test_flag_errors():
    with pytest.raises(ConfigError):
        parse_args([])
    with pytest.raises(ConfigError):
        parse_args(["--model_base_path=/x", "--model_config_file=/y"])
    assert cli.main(["--port=1"]) == 2  # no model: an error, not a crash
    assert cli.main(["--no_such_flag"]) == 2


TF_SERVING_MAIN_FLAGS = """port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms
rest_api_enable_cors_support enable_batching allow_version_labels_for_unavailable_models batching_parameters_file
enable_per_model_batching_parameters model_config_file model_config_file_poll_wait_seconds model_name
model_base_path num_load_threads num_unload_threads max_num_load_retries load_retry_interval_micros
file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism tensorflow_session_config_file
tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism use_alts_credentials ssl_config_file
platform_config_file per_process_gpu_memory_fraction saved_model_tags grpc_channel_arguments grpc_max_threads
enable_model_warmup num_request_iterations_for_warmup version monitoring_config_file
remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools num_tflite_interpreters_per_pool
enable_signature_method_name_check xla_cpu_compilation_enabled xla_gpu_compilation_enabled enable_profiler
thread_pool_factory_config_file mixed_precision skip_initialize_tpu enable_grpc_healthcheck_service
enable_serialization_as_tensor_content""".split()


def test_unreadable_allocator_setting_is_one_line_exit_2(monkeypatch, capsys):
    """serve sets the BFC allocator like training; a value TensorFlow cannot read is refused."""
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "yes")
    assert cli.main(["--model_base_path=/x"]) == 2
    err = capsys.readouterr().err
    assert "TF_CPU_ALLOCATOR_USE_BFC='yes'" in err and "true, false, 1, 0" in err
    assert len(err.strip().splitlines()) == 1


def test_every_tf_serving_flag_is_known():
    known = {opt[2:] for action in build_arg_parser()._actions for opt in action.option_strings}
    assert set(TF_SERVING_MAIN_FLAGS) - known == set()


def test_tf_serving_flags_work_or_fail_naming_the_flag(tmp_path, capsys):
    base = ["--model_base_path=/x"]
    cfg = parse_args(base + ["--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.x=abc",
                             "--tensorflow_session_parallelism=3", "--tensorflow_intra_op_parallelism=2",
                             "--flush_filesystem_caches=false", "--saved_model_tags=serve", "--num_load_threads=0"])
    assert cfg.grpc_channel_arguments == (("grpc.max_connection_age_ms", 2000), ("grpc.x", "abc"))
    assert (cfg.intra_op_parallelism, cfg.inter_op_parallelism) == (2, 3)
    for flag in ("--ssl_config_file=ssl.cfg", "--saved_model_tags=serve,tpu", "--num_load_threads=4",
                 "--rest_api_enable_cors_support", "--enable_grpc_healthcheck_service=true"):
        with pytest.raises(ConfigError, match=f"^{flag.split('=')[0]}"):
            parse_args(base + [flag])
    assert cli.main(base + ["--platform_config_file=p.cfg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("serve: error: --platform_config_file=p.cfg is not supported")
    # --monitoring_config_file: TF Serving's MonitoringConfig text proto.
    mon = tmp_path / "monitoring.config"
    mon.write_text('prometheus_config { enable: true, path: "/metrics" }')
    assert parse_args(base + [f"--monitoring_config_file={mon}"]).monitoring.path == "/metrics"
    mon.write_text("prometheus_config { enable: false }")
    assert not parse_args(base + [f"--monitoring_config_file={mon}"]).monitoring.enabled
    mon.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ConfigError, match="invalid --monitoring_config_file"):
        parse_args(base + [f"--monitoring_config_file={mon}"])
    with pytest.raises(ConfigError, match="needs --model_config_file"):
        parse_args(base + ["--model_config_file_poll_wait_seconds=5"])


def test_a_label_on_a_version_that_is_not_loaded_fails_the_config(tmp_path, capsys):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "2").mkdir()
    path = tmp_path / "models.config"
    path.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path / "m"}" '
                    'version_labels { key: "stable" value: 1 } } }')  # latest policy: only 2 is loaded
    assert cli.main([f"--model_config_file={path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "version label 'stable' points at version 1, which is not loaded" in err[0]
    assert parse_args([f"--model_config_file={path}", "--allow_version_labels_for_unavailable_models"])
    path.write_text(path.read_text().replace("value: 1", "value: 2"))
    assert parse_args([f"--model_config_file={path}"]).models[0].version_labels == {"stable": 2}


def test_flag_defaults_are_the_dataclass_defaults():
    """The defaults are written once, in config.py; the flags read them from there."""
    cfg = parse_args(["--model_base_path=/x"])
    assert dataclasses.replace(cfg, models=()) == ServerConfig(models=())
