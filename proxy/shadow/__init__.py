"""Shadow mirroring: candidates answer sampled live requests in a separate worker process."""
