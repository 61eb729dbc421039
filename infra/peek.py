#!/usr/bin/env python3
"""Reads otter topics with an independent Kafka client (confluent-kafka) and prints,
per topic, the record count and the last records. Used by the demo.

usage: infra/peek.py PREFIX [--last N] [--brokers HOST:PORT]
"""
import argparse
import json

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--last", type=int, default=3)
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    a = ap.parse_args()
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "otter-peek",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    topics = sorted(t for t in c.list_topics(timeout=10).topics if t.startswith(a.prefix + "."))
    for topic in topics:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        records = []
        while True:
            m = c.poll(1.5)
            if m is None:
                break
            if m.error():
                raise SystemExit(f"error reading {topic}: {m.error()}")
            records.append(json.loads(m.value()))
        # A schema change is copied to every partition: show it once.
        seen, unique = set(), []
        for r in sorted(records, key=lambda r: r["source"]["order"]):
            k = (r["op"] == "ddl", tuple(r["source"]["order"]))
            if r["op"] != "ddl" or k not in seen:
                seen.add(k)
                unique.append(r)
        ops = {}
        for r in unique:
            ops[r["op"]] = ops.get(r["op"], 0) + 1
        copies = len(records) - len(unique)
        note = f" (+{copies} copies of DDL on the other partitions)" if copies else ""
        print(f"{topic}: {len(unique)} changes {ops}{note}")
        records = unique
        for r in records[-a.last:]:
            if r["op"] == "ddl":
                print(f"    ddl    {r['ddl'][:80]}")
            else:
                print(f"    {r['op']:<6} before={json.dumps(r['before'])[:60]} after={json.dumps(r['after'])[:90]}")
    c.close()


if __name__ == "__main__":
    main()
