"""CareCircle benchmarks: each workload next to its raw baseline, in one run (`make bench`)."""
