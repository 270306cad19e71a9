// Starts Swagger UI on the gateway's own OpenAPI document (served beside this page, so a
// path prefix added by a proxy keeps working). No validator badge: it would call out.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    displayRequestDuration: true,
  });
});
