"""The outcome of ``scatflow analyze``: stations, windows, clusters, what was fitted,
and the one-paragraph summary printed at the end."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Summary:
    """The outcome of ``scatflow analyze``."""

    name: str
    joint: bool
    stations: list[str]
    windows: int = 0
    labelled_now: int = 0
    with_features: int = 0
    sample: int = 0
    fitted: bool = False
    explained: dict = dataclasses.field(default_factory=dict)
    #: Per model (None for the joint one, else the station), windows per cluster (-1: no label).
    model_sizes: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def cluster_sizes(self) -> dict:
        """Windows per cluster of the joint model; with one model per station only ``{-1: windows
        without label}`` (cluster numbers of different models are unrelated: see ``model_sizes``)."""
        if self.joint:
            return dict(self.model_sizes.get(None, {}))
        return {-1: sum(m.get(-1, 0) for m in self.model_sizes.values())}

    def text(self) -> str:
        """The one-paragraph summary printed at the end."""
        ev = ", ".join(f"{k or 'joint'} {100 * v:.1f} %" for k, v in self.explained.items())

        def sizes(counts):
            return ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()) if c >= 0) or "none"

        if self.joint:
            clusters = f"cluster sizes: {sizes(self.model_sizes.get(None, {}))}"
        else:
            clusters = "cluster sizes per station model: " + "; ".join(
                f"{k} ({sizes(v)})" for k, v in self.model_sizes.items())
        none = self.cluster_sizes.get(-1, 0)
        model = ("fitted now on a sample of " + f"{self.sample} windows") if self.fitted else "the stored model"
        text = (f"analysis {self.name!r} ({'joint model' if self.joint else 'one model per station'}, {model}): "
                f"{len(self.stations)} station(s), {self.windows} windows, {self.with_features} with features "
                f"({none} without: gaps, blocks not complete, or values <= 0 with log_floor = 0), "
                f"{self.labelled_now} labelled in this run "
                f"in {self.seconds:.1f} s; ICA explained variance of the sample: {ev or 'n/a (stored model)'}; "
                f"{clusters}.")
        lines = [text]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped]
        return "\n".join(lines)

    def count_labels(self, reader) -> None:
        """Add the windows and the windows per cluster of each labelled station, as recorded in
        ``analysis/<name>`` (its per-block label counts, read through ``reader``, a
        :class:`~scatflow.store.reader.StoreReader`; no label is read)."""
        for key in self.stations:
            windows, counts = reader.analysis_counts(self.name, key)
            self.windows += windows
            sizes = self.model_sizes.setdefault(None if self.joint else key, {})
            for v, c in counts.items():
                sizes[v] = sizes.get(v, 0) + c
        self.with_features = self.windows - self.cluster_sizes.get(-1, 0)
