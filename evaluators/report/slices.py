"""A candidate's figures over every slice of a report (all traffic, each category, each time
window), added up from cells: an exchange's cell is its categories and its window.

Reading each of a candidate's rows once into its cell's tally, and adding up the cells of a slice,
gives the figures `key_figures` takes over that slice's exchanges, at a fraction of the work: at
1,000,000 exchanges a row is in six or more slices, and reading it again for each (with every
score it needs looked up again) was most of a report's time. The noise floor of a slice is over
every twin-scored exchange in it, whether the candidate has a row there or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shadowtap.evaluators.report.figures import figures_of
from shadowtap.evaluators.report.model import KeyFigures
from shadowtap.evaluators.report.source import ReportInput, categories_of
from shadowtap.evaluators.report.tally import RowReader, RowTally, TallySums, add_noise, twin_answers_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Cell = tuple[tuple[tuple[str, str], ...], datetime]   # (categories, window start)


@dataclass(frozen=True)
class CandidateSlices:
    """A candidate's figures over all traffic, by category (dimension, value) and by window start;
    only the categories and windows the candidate has a row in (skips included)."""

    overall: KeyFigures
    categories: dict[tuple[str, str], KeyFigures]
    windows: dict[datetime, KeyFigures]


class ReportSlices:
    """Every exchange's cell, and the noise floor per cell, shared by all candidates of a report."""

    def __init__(self, data: ReportInput, step: timedelta) -> None:
        self.data = data
        self.cells, self.cell_of = _cells(data, step)
        self.twin_answers = twin_answers_of(data)
        noise: dict[int, RowTally] = {}
        for exchange_id in data.twin_scored:
            cell = self.cell_of[exchange_id]
            tally = noise.get(cell)
            if tally is None:
                tally = noise[cell] = RowTally()
            add_noise(data, tally, exchange_id)
        self.noise = {self.cells[cell]: tally.sums() for cell, tally in noise.items()}

    def candidate(self, name: str) -> CandidateSlices:
        tallies: dict[int, RowTally] = {}
        reader, cell_of = RowReader(self.data, name, self.twin_answers), self.cell_of
        for place, row in enumerate(self.data.shadows.get(name, ())):
            cell = cell_of[row["exchange_id"]]
            tally = tallies.get(cell)
            if tally is None:
                tally = tallies[cell] = RowTally()
            reader.add_row(tally, row, place)
        cells = {self.cells[cell]: tally.sums() for cell, tally in tallies.items()}
        overall = figures_of(TallySums.joined([*cells.values(), *self.noise.values()]))
        return CandidateSlices(overall=overall,
                               categories=self._by(cells, lambda cell: cell[0]),
                               windows=self._by(cells, lambda cell: (cell[1],)))

    def _by(self, cells: dict[Cell, TallySums], keys_of) -> dict:
        """Figures per key the candidate's cells hold, each over the candidate's cells with the key
        and every noise cell with it."""
        parts: dict = {}
        for cell, sums in cells.items():
            for key in keys_of(cell):
                parts.setdefault(key, []).append(sums)
        for cell, sums in self.noise.items():
            for key in keys_of(cell):
                if key in parts:
                    parts[key].append(sums)
        return {key: figures_of(TallySums.joined(found)) for key, found in parts.items()}


def window_start(moment: datetime, step: timedelta) -> datetime:
    """The start of the fixed window of length `step` (aligned to the Unix epoch) that holds `moment`."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def _cells(data: ReportInput, step: timedelta) -> tuple[list[Cell], dict[str, int]]:
    """The distinct cells, and exchange id -> its cell's index (a row's cell is looked up once per
    row: an int hashes at once, a tuple of tuples again every time). Categories are worked out once
    per distinct (endpoint, task, risk tier, tags) and windows once per window: traffic repeats a
    few of each."""
    categories: dict[tuple, tuple[tuple[str, str], ...]] = {}
    index: dict[Cell, int] = {}
    cell_of: dict[str, int] = {}
    start = end = None
    for exchange_id, exchange in data.exchanges.items():
        shape = (exchange["endpoint"], exchange["task"], exchange["risk_tier"], id(exchange["tags"]))
        found = categories.get(shape)
        if found is None:
            found = categories[shape] = tuple(categories_of(exchange))
        moment = exchange["started_dt"]
        if start is None or not start <= moment < end:
            start = window_start(moment, step)
            end = start + step
        cell_of[exchange_id] = index.setdefault((found, start), len(index))
    return list(index), cell_of
