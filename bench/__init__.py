"""Benchmarks: Lightbox against Orthanc on the same data, same machine (see bench/README.md)."""
