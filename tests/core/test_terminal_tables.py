"""Tables on narrow terminals: whole ids and numbers, as a table, cards or one line per row."""

from rich.console import Console

from shadowtap.core.terminal_tables import print_table

COLUMNS = ("id", "started at", "endpoint", "status", "latency ms", "flags")
ROWS = [["01m84cgkqk09n5pahjatyw6kxa", "2026-11-23T14:21:14.867", "chat.completions", "200", "0.4", ""],
        ["01m84cgkqj6jw75sdr901erewy", "2026-11-23T14:21:14.866", "embeddings", "502", "12.5", "stream_incomplete"]]


def printed(width: int, **options) -> str:
    console = Console(width=width, record=True)
    print_table(console, "captured exchanges", COLUMNS, ROWS, **options)
    return console.export_text()


def test_a_table_that_fits_is_printed_as_one_table():
    text = printed(200)
    assert "┃ id " in text and text.count("01m84") == 2


def test_a_list_too_wide_prints_one_line_per_row_with_every_value_whole_and_empty_cells_left_out():
    lines = printed(80, list_rows=True).splitlines()
    assert lines[0] == "captured exchanges"
    assert lines[1] == ("01m84cgkqk09n5pahjatyw6kxa  started_at=2026-11-23T14:21:14.867  endpoint=chat.completions  "
                        "status=200  latency_ms=0.4")
    assert lines[2].endswith("latency_ms=12.5  flags=stream_incomplete")


def test_a_few_rows_too_wide_become_one_card_each_with_values_unbroken():
    text = printed(60)
    assert "captured exchanges:" in text and "01m84cgkqk09n5pahjatyw6kxa" in text.split()
    assert "2026-11-23T14:21:14.867" in text and "stream_incomplete" in text
    assert max(len(line) for line in text.splitlines()) <= 60
