"""Transport-free use cases: REST routes and gRPC servicers both call these functions."""
