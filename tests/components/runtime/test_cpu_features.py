from pathlib import Path

from components.runtime.cpu_features import cpu_flags, native_bf16_matmul

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
bugs\t\t: sysret_ss_attrs
"""
AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_flags_come_from_the_flags_line_only():
    assert cpu_flags(ZEN4) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
    assert "sysret_ss_attrs" not in cpu_flags(ZEN4)
    assert cpu_flags("processor\t: 0\n") == set()


def test_native_bf16_needs_avx512_bf16_or_amx(tmp_path):
    for text, expected in ((ZEN4, True), (AVX2, False), ("flags\t: avx2 amx_bf16 amx_tile\n", True)):
        (tmp_path / "cpuinfo").write_text(text)
        assert native_bf16_matmul(tmp_path / "cpuinfo") is expected


def test_no_cpuinfo_means_no(tmp_path):
    assert native_bf16_matmul(tmp_path / "absent") is False


def test_this_machine_agrees_with_its_cpuinfo():
    path = Path("/proc/cpuinfo")
    flags = cpu_flags(path.read_text()) if path.exists() else set()
    assert native_bf16_matmul() is bool(flags & {"avx512_bf16", "amx_bf16"})
