"""The memo behind the live path's per-path answers: bounded in key length and in count."""

import pytest

from shadowtap.proxy.path_memo import remembered_for_short_paths


def counting(max_length: int = 8, maxsize: int = 2):
    calls: list[str] = []

    @remembered_for_short_paths(max_length=max_length, maxsize=maxsize)
    def answer(path: str) -> str:
        calls.append(path)
        if path.startswith("bad"):
            raise ValueError(path)
        return path.upper()

    return answer, calls


def test_a_short_path_is_computed_once_and_a_long_one_every_time():
    answer, calls = counting()
    assert [answer("/v1/a"), answer("/v1/a")] == ["/V1/A", "/V1/A"]
    assert [answer("/v1/long/path"), answer("/v1/long/path")] == ["/V1/LONG/PATH"] * 2
    assert calls == ["/v1/a", "/v1/long/path", "/v1/long/path"]


def test_an_answer_that_raises_is_never_remembered():
    answer, calls = counting()
    for _ in range(2):
        with pytest.raises(ValueError):
            answer("bad")
    assert calls == ["bad", "bad"]


def test_at_most_maxsize_paths_are_remembered():
    answer, calls = counting(maxsize=2)
    for path in ("a", "b", "c", "a"):
        answer(path)
    assert calls == ["a", "b", "c", "a"]  # "a" was the least recently used when "c" came
