"""A realistic, seeded hotline: traffic for tests, the demo and benchmarks, with ground truth.

- :mod:`.clock`: epoch milliseconds, local hours, months and midnights, RFC 3339 text.
- :mod:`.records`: what the simulation decided happened (calls, reviews, surveys, work orders).
- :mod:`.traffic`: the traffic model that decides it (arrivals, queues, agents, patience; in
  the v2 event model also transfers, overflows, blocked and left legs, repeat callers).
- :mod:`.shifts`: agents' states (v2), written from the traffic model's staffing and calls.
- :mod:`.truth`: the ground truth, an oracle computed from those records alone: it imports
  neither the fold, nor the store, nor the KPI catalogue.
- :mod:`.events`: the records as SPEC §2 event dicts and JSON lines in arrival order, with
  duplicates, shuffled arrivals and malformed lines.
- :mod:`.simulator`: :class:`~.simulator.Simulator` ties them together into one stream.
- :mod:`.writers`: the stream to a file or to a Kafka topic.

``hotline_kpi.simulate`` is the ``simulate`` command on top of these.
"""
