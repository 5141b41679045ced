"""Speed and memory measurements (never timed assertions in the test suite).

Each benchmark is a module `benchmarks/bench_<name>.py` whose `main()` runs it and prints
one Markdown section on stdout. `python -m benchmarks.run` (`make bench`) runs them all,
each in its own process, and writes BENCHMARKS.md with the machine and the date.
"""
