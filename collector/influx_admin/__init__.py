"""InfluxDB administration: buckets, tokens and tasks (setup), queries, export."""
