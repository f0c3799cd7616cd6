"""The one result store: whole results by key, content-made keys, any key a safe file name, threads writing at once."""

import threading

from workbench.store import Store


def test_the_store_writes_whole_results(tmp_path):
    store = Store(tmp_path)
    store.put("k", {"items": [1, 2]})
    assert store.get("k") == {"items": [1, 2]} and store.keys() == ["k"] and store.get("missing") is None


def test_a_key_made_from_content_ignores_order_and_changes_with_any_value():
    request = {"model": "m", "messages": [{"role": "user", "content": "合同"}], "params": {"max_tokens": 8}}
    assert Store.key(request) == Store.key(dict(reversed(list(request.items()))))
    assert Store.key(request) != Store.key({**request, "params": {"max_tokens": 9}})
    assert len(Store.key(request)) == 64


def test_any_key_is_kept_under_a_safe_name_and_threads_write_at_once(tmp_path):
    store = Store(tmp_path)
    odd = ["constrained+few-shot.simple_python_3", "../escape", "a b/c", "x" * 400]
    for key in odd:
        store.put(key, {"key": key})
    assert [store.get(key) for key in odd] == [{"key": key} for key in odd]
    assert {p.parent for p in (tmp_path / "results").rglob("*.json")} == {tmp_path / "results"}  # nothing escaped
    assert "constrained+few-shot.simple_python_3" in store.keys()

    def write(n):
        for i in range(50):
            store.put(f"same-{i % 5}", {"writer": n, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.get(f"same-{i}")["i"] % 5 == i for i in range(5))  # whole results, never a torn file
    assert len(store) == len(odd) + 5 and not list((tmp_path / "results").glob("*.tmp"))
