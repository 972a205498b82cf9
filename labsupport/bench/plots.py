"""`lab bench`'s plots as PNG files (matplotlib, no display): the producer ladder, the
path's stages side by side, and the end-to-end rate ladder. A plot whose step gave no
numbers is left out; the report lists the files written."""

from __future__ import annotations

from pathlib import Path

from labsupport.ingest.producer_ladder import SEED_FIXED_RATE

SEED_LABEL = f"the seed ≈ {SEED_FIXED_RATE:,}/s"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a lab machine or in CI
    import matplotlib.pyplot as plt

    return plt


def _bars(path: Path, title: str, names: list[str], values: list[float], ylabel: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars = ax.bar(names, values, color="steelblue")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=2, fontsize=8)
    ax.axhline(SEED_FIXED_RATE, color="firebrick", linestyle="--", label=SEED_LABEL)
    ax.set_yscale("log")
    ax.set_ylim(min(values + [SEED_FIXED_RATE]) / 2, max(values + [SEED_FIXED_RATE]) * 5)  # room for the legend
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def producers_png(report: dict, folder: Path) -> str | None:
    ladder = (report["sections"].get("producers") or {}).get("rungs") or []
    if not ladder:
        return None
    _bars(folder / "producers.png", "Producers: records acknowledged per second",
          [r["name"] for r in ladder], [r["per_second"] for r in ladder], "records/s (log)")
    return "producers.png"


def stages_png(report: dict, folder: Path) -> str | None:
    f = report["figures"]
    stages = {"fixed producer": f.get("producer_batched_per_s"), "sink alone, one table": f.get("sink_one_table_per_s"),
              "sink alone, both tables": f.get("sink_both_tables_per_s"), "end to end": f.get("end_to_end_per_s")}
    stages = {k: v for k, v in stages.items() if v}
    if not stages:
        return None
    _bars(folder / "stages.png", "The path's stages, events/s", list(stages), list(stages.values()), "events/s (log)")
    return "stages.png"


def ladder_png(report: dict, folder: Path) -> str | None:
    rungs = (report["sections"].get("end_to_end") or {}).get("rungs") or []
    if not rungs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = [r["target_rate"] for r in rungs]
    ax.plot(x, x, color="grey", linestyle=":", label="input")
    ax.plot(x, [r["throughput"] for r in rungs], marker="o", label="committed events/s")
    ax.set_xlabel("input events/s")
    ax.set_ylabel("events/s")
    lat = ax.twinx()
    lat.plot(x, [r["latency_s"]["p50"] for r in rungs], marker="s", color="darkorange", label="p50 latency")
    lat.plot(x, [r["latency_s"]["p99"] for r in rungs], marker="^", color="firebrick", label="p99 latency")
    lat.set_ylabel("event → row latency, s")
    ax.set_ylim(bottom=0)
    lat.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + lat.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    ax.set_title("End to end: the rate ladder")
    fig.tight_layout()
    fig.savefig(folder / "ladder.png", dpi=110)
    plt.close(fig)
    return "ladder.png"


def write_all(report: dict, folder: Path) -> list[str]:
    return [name for draw in (producers_png, stages_png, ladder_png) if (name := draw(report, folder))]
