"""A file name is data, never terminal control: names holding escape sequences, bells and newlines are printed
escaped by `dymesh stats` (and stored as they are, so that the table stays true to the file system)."""

from __future__ import annotations

from pipeline.commands.stats import format_table

EVIL = "evil\x1b[2J\x1b]0;pwned\x07name\nline.glb"


def test_stats_tables_print_control_characters_escaped():
    text = format_table(["name", "uri\x1b[31m"], [(EVIL, 3), ("plain.glb", None)])
    assert "\x1b" not in text and "\x07" not in text
    assert text.count("\n") == 3  # header, rule, two rows: the name's newline did not start a line
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07name\\x0aline.glb" in text
    assert "plain.glb" in text
