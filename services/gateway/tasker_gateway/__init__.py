"""The gateway service: Tasker's API edge, gRPC and REST over one set of use cases."""
