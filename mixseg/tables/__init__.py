"""The papers' downstream tables, our results beside the published numbers; one module per idea:

* :mod:`.published` — the tables A-E as the papers print them (:class:`~.published.Table`, ``TABLES``), the
  published numbers, and the method names the tables show (``METHOD_TITLES``).
* :mod:`.setups` — the paper's data and schedule of each table, and how a result's recorded setup compares.
* :mod:`.results` — our results files (``<work_dir>/results/<tag>.json``): read, collected by table row;
  Table D's results file written from a backbone file's top-1.
* :mod:`.rows` — which row a run belongs to: derived from its backbone file, checked against its config.
* :mod:`.render` — the tables as text (markdown, csv, json) with their notes; missing cells; baseline gains.
* :mod:`.plots` — the tables and Table E's curves as figures.

``tools/tables.py`` is the command line; ``mixseg.reproduce`` writes the tables at the end of a table run.
"""
