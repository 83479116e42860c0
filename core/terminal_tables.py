"""Tables for a terminal of any width: as a table when it fits, otherwise row by row.

rich folds a table that is too wide into columns a few characters wide, splitting every id and
number across lines. Row by row keeps them whole on an 80-column terminal or in a CI log: a card
per row (each column on a line of its own) for a few rows, or for long lists one line per row,
`first-cell  column=value ...`, empty cells left out. Every cell is plain text, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIPPED": "yellow"}


def print_table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                list_rows: bool = False) -> None:
    if not rows or natural_width(columns, rows) <= console.width:
        console.print(_table(title, columns, rows))
        return
    if list_rows:
        console.print(Text(title), soft_wrap=True)
        for row in rows:
            fields = [f"{column.replace(' ', '_')}={cell}" for column, cell in zip(columns[1:], row[1:]) if cell]
            console.print(Text("  ".join([row[0], *fields])), soft_wrap=True)
        return
    for row in rows:
        card = Table(title=Text(f"{title}: {row[0]}"), title_justify="left", show_header=False)
        card.add_column(overflow="fold")
        card.add_column(overflow="fold")
        for column, cell in zip(columns[1:], row[1:]):
            card.add_row(Text(column), _cell(cell))
        console.print(card)


def natural_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Columns at their widest cell or header, plus rich's borders and padding."""
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    return sum(widths) + 3 * len(widths) + 1


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    return table


def _cell(cell: str) -> Text:
    return Text(cell, style=STATUS_STYLE.get(cell, ""))
