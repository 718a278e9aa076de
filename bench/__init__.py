"""waguard benchmarks (`make bench` -> bench/results.json, docs/performance.md) and the reliability harness
the tests share: AWS call metering and fault injection through botocore events (`bench.meter`) and an SQS
event-source-mapping emulator (`bench.esm`)."""
