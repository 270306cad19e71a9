"""Request and response bodies shared by REST, gRPC (converted) and the OpenAPI document."""
