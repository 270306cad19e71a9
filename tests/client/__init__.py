"""Tests of tasker_client and the gRPC commands of tasker_cli."""
