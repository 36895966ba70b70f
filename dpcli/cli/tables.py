"""Tables that fit the terminal: the name column is never cut, other columns wrap between words,
and where they cannot fit the rows become a list."""
from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dpcli.cli.console import console_err


def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                target: Console | None = None, justify: Sequence[str] | None = None,
                footer: Sequence[str] | None = None) -> None:
    """A table whose first column (names a user types) is never cut: the other columns wrap between
    words, and where they cannot fit the console's width the rows become a list, one name a line
    followed by its ``header: value`` lines. Cells may hold rich markup."""
    from rich.text import Text

    target = target or console_err
    justify = list(justify or ["left"] * len(headers))
    all_rows = [[str(c) for c in r] for r in list(rows) + ([list(footer)] if footer else [])]
    keep = [i for i in range(len(headers))  # a column empty in every row says nothing: leave it out
            if i == 0 or any(Text.from_markup(r[i]).plain.strip() for r in all_rows)]
    headers, justify = [headers[i] for i in keep], [justify[i] for i in keep]
    all_rows = [[r[i] for i in keep] for r in all_rows]
    n_rows = len(rows)

    def width(cell: str) -> int:
        return Text.from_markup(cell).cell_len

    def word(cell: str) -> int:  # the longest word: a column narrower than that would cut it
        return max([len(w) for w in Text.from_markup(cell).plain.split()] + [0])

    name_width = max([width(r[0]) for r in all_rows] + [len(headers[0])])
    # Widths of the other columns: short values (numbers, flags) and headers at full width; longer
    # text at least its longest word, sharing what room is left.
    cols = range(1, len(headers))
    natural = {i: max([width(r[i]) for r in all_rows] + [len(headers[i])]) for i in cols}
    least = {i: max([width(r[i]) if width(r[i]) <= 12 else word(r[i]) for r in all_rows] + [word(headers[i])])
             for i in cols}
    room = target.width - 1 - name_width - 2 * (len(headers) - 1)  # two spaces between columns, one spare
    if sum(least.values()) <= room:
        widths = dict(least)
        spare = room - sum(least.values())
        for i in sorted(cols, key=lambda i: natural[i] - least[i]):  # the cheapest to unwrap first
            grow = min(spare, natural[i] - widths[i])
            widths[i] += grow
            spare -= grow
        table = Table(title=title, box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
        table.add_column(headers[0], no_wrap=True, min_width=name_width)
        for i in cols:
            table.add_column(headers[i], justify=justify[i], width=widths[i])  # type: ignore[arg-type]
        for row in all_rows[:n_rows]:
            table.add_row(*row)
        if footer:
            table.add_section()
            table.add_row(*all_rows[-1])
        target.print(table)
        return
    if title:
        target.print(f"[bold]{title}[/bold]", highlight=False)
    for row in all_rows:
        target.print(row[0], highlight=False, soft_wrap=True)
        for head, cell in zip(headers[1:], row[1:]):
            if Text.from_markup(cell).plain.strip():
                target.print(f"    {escape(head)}: {cell}", highlight=False, soft_wrap=True)
