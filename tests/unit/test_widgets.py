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
