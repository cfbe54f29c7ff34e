"""The benchmarks behind ``sld bench``: fitting (``fit``), campaigns on the curated
tasks (``campaigns``), pseudo-tasks cut from training rows (``pseudo``,
``pseudo_tasks``, ``selection_study``), throughput, and the offline proposer."""
