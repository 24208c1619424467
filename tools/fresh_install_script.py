#!/usr/bin/env python3
"""tools/fresh_install_script.py -- writes anonymize--1.2.sql, the script of
a new installation of version 1.2, from the scripts of the update path:

    python3 tools/fresh_install_script.py

A new installation must not run anonymize--1.0.sql, whose preset mapping the
update to 1.2 would convert: version 1.2 installs no mapping.  The script is
what the update path leaves, without the 1.0 mapping tables and functions
and without the conversion block of anonymize--1.1--1.2.sql; the regression
test upgrade_1_1_to_1_2 checks that both give the same objects.
"""
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read(name):
    with open(os.path.join(root, name)) as f:
        return f.read()


def between(text, start, end):
    return text[text.index(start):text.index(end)]


v10 = read("anonymize--1.0.sql")
v11 = read("anonymize--1.0--1.1.sql")
v12 = read("anonymize--1.1--1.2.sql")
begin = v12.index("-- conversion of the 1.1 mapping: begin")
end_marker = "-- conversion of the 1.1 mapping: end\n"
end = v12.index(end_marker) + len(end_marker)

parts = [
    "/* anonymize--1.2.sql: a new installation of version 1.2, written by\n"
    " * tools/fresh_install_script.py from the scripts of the update path */\n\n"
    "-- complain if script is sourced in psql, rather than via CREATE EXTENSION\n"
    '\\echo Use "CREATE EXTENSION anonymize" to load this file. \\quit\n\n',
    between(v10, "/* The audit log holds no personal data",
            "/* The mapping of examples/billing.sql. */"),
    "SELECT pg_catalog.pg_extension_config_dump('anonymize.audit_log', '');\n\n",
    between(v10, "CREATE FUNCTION anonymize.mapping_changed()",
            "CREATE TRIGGER preset_row"),
    between(v10, "/*\n * The work: eligibility and erasure of one customer.",
            "/*\n * Changing the mapping."),
    "REVOKE EXECUTE ON FUNCTION anonymize.mapping_changed() FROM PUBLIC;\n\n",
    v11[v11.index("/*\n * Erasure requests"):],
    "\n",
    v12[v12.index("/*\n * The whole mapping is checked"):begin],
    v12[end:],
]
with open(os.path.join(root, "anonymize--1.2.sql"), "w") as f:
    f.write("".join(parts))
