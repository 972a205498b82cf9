"""Measuring: `lab bench up` (cold/warm start), `lab bench stream` (the stream's rate
ladder), the CPU profile per process and JVM thread, and the load generator."""
