"""The library of ``python -m dcgan_mnist ablate`` (tools/ablate.py, the command): its plan (plan.py), the tasks
its workers run (tasks.py) and the report it writes (report.py)."""
