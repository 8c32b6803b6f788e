"""Reports: one report value per run, rendered to Markdown and to self-contained HTML."""
