"""The Swagger UI page served at /api-docs/ui (loads swagger-ui from a CDN)."""

from __future__ import annotations

SWAGGER_UI_VERSION = "5.17.14"

SWAGGER_HTML = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Tasker API</title>
  <link rel="stylesheet"
        href="https://unpkg.com/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-bundle.js">
  </script>
  <script>
    window.onload = () => {{
      window.ui = SwaggerUIBundle({{url: "/api-docs/openapi.json", dom_id: "#swagger-ui"}});
    }};
  </script>
</body>
</html>
"""
