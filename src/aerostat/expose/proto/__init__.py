"""Generated protobuf classes of the exposition formats (see tools/gen_metrics_pb2.py)."""
