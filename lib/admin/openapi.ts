/** The OpenAPI 3.1 document of the admin API, served at /api/v1/openapi.json. */
import { VERSION } from "../config/version.ts";
import { policyPaths, policySchemas } from "./policy_openapi.ts";

const error = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
  },
};
const legacyError = {
  type: "object",
  properties: { success: { const: false }, error: { type: "string" } },
};
const domain = {
  type: "object",
  required: ["id", "domain", "memo", "created_at", "updated_at"],
  properties: {
    id: { type: "string", format: "uuid" },
    domain: { type: "string", example: "app.example.com" },
    memo: { type: "string" },
    created_at: { type: "string", format: "date-time" },
    updated_at: { type: "string", format: "date-time" },
  },
};
const issued = {
  allOf: [{ $ref: "#/components/schemas/Domain" }, {
    type: "object",
    required: ["client_api_key"],
    properties: { client_api_key: { type: "string", pattern: "^[0-9a-f]{64}$" } },
  }],
};
const session = {
  type: "object",
  properties: {
    id: { type: "string" },
    remote_address: { type: "string" },
    connected_since: { type: "string", format: "date-time" },
    requests_served: { type: "integer" },
  },
};

const certificate = {
  type: ["object", "null"],
  description: "The domain's TLS certificate in ACME mode; null in self-signed and off modes.",
  properties: {
    status: { enum: ["pending", "ordering", "issued", "renewing", "failed", "expired"] },
    issued: { type: "boolean" },
    serial: { type: ["string", "null"] },
    not_before: { type: ["string", "null"], format: "date-time" },
    not_after: { type: ["string", "null"], format: "date-time" },
    next_renewal: {
      type: ["string", "null"],
      format: "date-time",
      description: "Next planned order (renewal or retry); null while one is queued or running",
    },
    last_error: { type: ["string", "null"] },
    last_error_at: { type: ["string", "null"], format: "date-time" },
    failures: { type: "integer", description: "Consecutive failed orders" },
  },
};

function json(schemaRef: string, description: string) {
  return {
    description,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${schemaRef}` } } },
  };
}

const errors = {
  400: json("Error", "Invalid domain, body or JSON"),
  401: json("Error", "Missing or wrong admin API key"),
  413: json("Error", "Body over 64 KB"),
};
const domainPath = {
  name: "domain",
  in: "path",
  required: true,
  schema: { type: "string" },
  example: "app.example.com",
};
const body = (props: Record<string, unknown>, required: string[]) => ({
  required: true,
  content: { "application/json": { schema: { type: "object", required, properties: props } } },
});

/** Builds the document; `serverDomain` fills in the server URL. */
export function openApiDocument(serverDomain: string): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "HopGate admin API",
      version: VERSION,
      description:
        "Register domains and issue the client API keys that HopGate tunnel clients authenticate with.",
    },
    servers: [{ url: `https://${serverDomain}/api/v1/admin` }],
    security: [{ bearer: [] }],
    paths: {
      ...policyPaths,
      "/domains": {
        get: {
          summary: "List registered domains (never with their keys)",
          responses: {
            200: {
              description: "The domains",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: {
                      domains: { type: "array", items: { $ref: "#/components/schemas/Domain" } },
                    },
                  },
                },
              },
            },
            401: errors[401],
          },
        },
        post: {
          summary: "Register a domain and issue its client API key",
          requestBody: body({ domain: { type: "string" }, memo: { type: "string", maxLength: 1000 } }, [
            "domain",
          ]),
          responses: {
            201: json("IssuedDomain", "Registered"),
            409: json("Error", "Already registered"),
            ...errors,
          },
        },
      },
      "/domains/{domain}": {
        parameters: [domainPath],
        get: {
          summary: "One domain with its connected tunnel sessions",
          responses: {
            200: {
              description: "The domain",
              content: {
                "application/json": {
                  schema: {
                    allOf: [{ $ref: "#/components/schemas/Domain" }, {
                      type: "object",
                      properties: {
                        sessions: { type: "array", items: { $ref: "#/components/schemas/Session" } },
                        certificate: { $ref: "#/components/schemas/Certificate" },
                      },
                    }],
                  },
                },
              },
            },
            404: json("Error", "Not registered"),
            ...errors,
          },
        },
        delete: {
          summary: "Remove a domain; its tunnel sessions close at once",
          responses: { 204: { description: "Removed" }, 404: json("Error", "Not registered"), ...errors },
        },
      },
      "/domains/{domain}/rotate-key": {
        parameters: [domainPath],
        post: {
          summary: "Issue a new client API key; sessions using the old one close at once",
          responses: {
            200: json("IssuedDomain", "The new key"),
            404: json("Error", "Not registered"),
            ...errors,
          },
        },
      },
      "/domains/{domain}/renew-certificate": {
        parameters: [domainPath],
        post: {
          summary: "Order a new certificate for the domain now (ACME mode); served from the next handshake",
          responses: {
            202: {
              description: "Renewal queued",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { certificate: { $ref: "#/components/schemas/Certificate" } },
                  },
                },
              },
            },
            404: json("Error", "Not registered"),
            409: json("Error", "The server is not in ACME mode"),
            ...errors,
          },
        },
      },
      "/domains/register": {
        post: {
          summary: "Go HopGate compatible registration",
          requestBody: body({ domain: { type: "string" }, memo: { type: "string" } }, ["domain"]),
          responses: {
            200: {
              description: "Registered",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { success: { const: true }, client_api_key: { type: "string" } },
                  },
                },
              },
            },
            400: json("LegacyError", "Invalid"),
            409: json("LegacyError", "Already registered"),
          },
        },
      },
      "/domains/unregister": {
        post: {
          summary: "Go HopGate compatible removal, authorized by the domain's client API key too",
          requestBody: body({ domain: { type: "string" }, client_api_key: { type: "string" } }, [
            "domain",
            "client_api_key",
          ]),
          responses: {
            200: { description: "Removed" },
            404: json("LegacyError", "No such domain with that key"),
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "HOP_ADMIN_API_KEY" } },
      schemas: {
        Error: error,
        LegacyError: legacyError,
        Domain: domain,
        IssuedDomain: issued,
        Session: session,
        Certificate: certificate,
        ...policySchemas,
      },
    },
  };
}
