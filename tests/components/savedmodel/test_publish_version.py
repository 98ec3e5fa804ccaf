"""Export versions are claimed race-free: two exports never share (or overwrite) a number."""
import threading

from components.savedmodel.layout import publish_version


def _export(base, name):
    tmp = base / f".tmp-export-{name}"
    tmp.mkdir(parents=True)
    (tmp / "saved_model.pb").write_text(name)
    return tmp


def test_concurrent_exports_get_distinct_versions(tmp_path):
    base = tmp_path / "exports" / "m"
    tmps = [_export(base, str(i)) for i in range(8)]
    results, start = [], threading.Barrier(len(tmps))

    def publish(tmp):
        start.wait()
        results.append(publish_version(tmp, base))

    threads = [threading.Thread(target=publish, args=(t,)) for t in tmps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(p.name) for p in results) == list(range(1, 9))
    assert sorted((p / "saved_model.pb").read_text() for p in results) == [str(i) for i in range(8)]


def test_taken_number_moves_to_the_next(tmp_path, monkeypatch):
    """A rival that takes our number between the look and the rename: we take the next one."""
    from components.savedmodel import layout

    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_text("first")
    tmp = _export(base, "mine")
    calls = []

    def stale_next_version(b):  # first answer is stale (1 is taken), like a race
        calls.append(1)
        return 1 if len(calls) == 1 else 2

    monkeypatch.setattr(layout, "next_version", stale_next_version)
    assert publish_version(tmp, base).name == "2"
    assert (base / "1" / "saved_model.pb").read_text() == "first"
