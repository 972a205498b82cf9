import pytest

from labsupport.times import duration_s


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("1m30s", 90), ("250ms", 0.25), ("2h", 7200), ("1.5s", 1.5)])
def test_durations_read_as_prometheus_writes_them(text, seconds):
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 s", "s5", "5x", "1m 30s"])
def test_anything_else_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match="e.g. 5s"):
        duration_s(text)
