"""streamlab's support package: everything the notebooks, the `lab` command and the
tests share (stack control, configuration, producers, the streaming job, metrics,
widgets, checks). Notebooks stay short because the mechanics live here."""

__version__ = "0.1.0"
