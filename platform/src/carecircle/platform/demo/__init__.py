"""``carecircle demo``: the whole circle on one machine (private PostgreSQL and broker,
supervised component processes, clean stop on Ctrl-C).  See ``docs/demo.md``."""
