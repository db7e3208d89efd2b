"""Resource and latency surrogates: graphs of a model, GATv2 and transformer estimators, the HTTP service."""
