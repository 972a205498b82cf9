"""LivePlot's sampled series: numbers that are not in Prometheus, plotted live."""

from __future__ import annotations

import itertools


def test_a_sampled_series_collects_one_point_per_callable_per_refresh():
    from labsupport.observe.widgets import LivePlot

    counter = itertools.count()
    plot = LivePlot("claimed vs stored", series={"claimed": lambda: next(counter), "stored": lambda: None},
                    interval=0.05, duration=0.3)
    plot.wait(10)
    figure = plot.stop()
    claimed, stored = figure.data
    assert plot.refreshes >= 2 and plot.error is None
    assert list(claimed.y) == list(range(len(claimed.y))) and len(claimed.y) == plot.refreshes
    assert len(stored.y or ()) == 0, "a callable answering None (endpoint down) adds no point"


def test_an_expression_plot_needs_no_dashboard_panel():
    from labsupport.observe.widgets import LivePlot

    plot = LivePlot("lag", expr='sum(consumer_lag{job="stream"})', interval=60, duration=0)
    plot.stop()
    assert plot.panel.targets[0].expr == 'sum(consumer_lag{job="stream"})'


def _series(service, values):
    return {"metric": {"service": service}, "values": [(1_800_000_000 + 2 * i, str(v)) for i, v in enumerate(values)]}


def test_only_keeps_the_rings_nodes_and_not_the_one_node_that_ran_before(monkeypatch):
    from labsupport.observe import panels, prom
    from labsupport.observe.widgets import LivePlot

    found = [_series("cassandra", [5, 5, 0]), _series("cassandra-1", [0, 9, 9]), _series("cassandra-2", [0, 1, 1])]
    monkeypatch.setattr(prom, "query_range", lambda expr, minutes, step, cfg=None: found)
    plot = LivePlot("Writes/s per node", interval=60, duration=0, only={"service": ["cassandra-1", "cassandra-2"]})
    plot.wait(10)
    names = [t.name for t in plot.stop().data]
    assert names == ["cassandra-1", "cassandra-2"], names
    assert len(panels.traces(plot.panel, only=None)) == 3


def test_wait_drawn_returns_once_every_line_reaches_the_time_and_times_out_otherwise(monkeypatch):
    from datetime import datetime, timezone

    import pytest

    from labsupport.observe import prom
    from labsupport.observe.widgets import LivePlot
    from labsupport.waits import TimedOut

    found = [_series("cassandra-1", [0, 9, 9]), _series("cassandra-2", [0, 1])]
    monkeypatch.setattr(prom, "query_range", lambda expr, minutes, step, cfg=None: found)
    plot = LivePlot("Writes/s per node", interval=60, duration=0)
    plot.wait(10)
    at = lambda s: datetime.fromtimestamp(1_800_000_000 + s, tz=timezone.utc)  # noqa: E731
    assert plot.drawn_until() == at(2), "the shortest line decides"
    assert plot.wait_drawn(at(2), timeout=1) is plot
    with pytest.raises(TimedOut, match="reach"):
        plot.wait_drawn(at(4), timeout=0)
    plot.stop()
