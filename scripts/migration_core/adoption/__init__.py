"""Switching from another tool: import its migrations folder, and adopt its history (import_migrations.py).

One module per source layout (golang_migrate, dbmate, goose, flyway: pure readers), versions (the mapping),
writer (render, check, write), importing (the folder import), applied (what the other tool's history says) and
adopt (the database part), report (results and their output). See docs/switching.md.
"""
