"""The gRPC transport: grpclib (asyncio) bridged to Trio with trio-asyncio."""
