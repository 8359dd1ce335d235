/** The OpenAPI paths and schemas of /domains/{domain}/policy, spread into openapi.ts. */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonOf = (name: string, description: string) => ({
  description,
  content: { "application/json": { schema: ref(name) } },
});
const headerRules = {
  type: "object",
  additionalProperties: false,
  properties: {
    add: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "Headers set (replacing any of the same name)",
    },
    remove: { type: "array", items: { type: "string" }, description: "Header names removed" },
  },
};
const cidrs = (description: string) => ({
  type: "array",
  maxItems: 1000,
  items: { type: "string", examples: ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"] },
  description,
});
const common = {
  ip_allow: cidrs("Only these peer addresses are served (IPv4 rules match IPv4-mapped IPv6 peers)"),
  ip_deny: cidrs("These peer addresses get 403; checked before ip_allow"),
  rate_limit: {
    type: "object",
    additionalProperties: false,
    required: ["per_second"],
    properties: {
      per_second: { type: "number", exclusiveMinimum: 0 },
      burst: { type: "integer", minimum: 1, description: "Default: per_second rounded up" },
    },
    description: "Per client address (IPv6: per /64); over it: 429 with Retry-After",
  },
  request_headers: headerRules,
  response_headers: headerRules,
};

const policyInput = {
  type: "object",
  additionalProperties: false,
  description: "Every field optional; PUT replaces the whole policy",
  properties: {
    basic_auth: {
      type: "array",
      maxItems: 50,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["username", "password"],
        properties: { username: { type: "string" }, password: { type: "string", writeOnly: true } },
      },
      description: "Basic auth users; passwords are stored as bcrypt hashes and never returned",
    },
    ...common,
  },
};
const policy = {
  type: "object",
  required: ["domain", "policy", "updated_at"],
  properties: {
    domain: { type: "string" },
    updated_at: { type: "string", format: "date-time" },
    policy: {
      type: "object",
      properties: {
        basic_auth: {
          type: "array",
          items: { type: "object", properties: { username: { type: "string" } } },
        },
        ...common,
      },
    },
  },
};

const errors = {
  400: jsonOf("Error", "Invalid domain, body or JSON"),
  401: jsonOf("Error", "Missing or wrong admin API key"),
  404: jsonOf("Error", "Domain not registered, or no policy"),
};

export const policyPaths = {
  "/domains/{domain}/policy": {
    parameters: [{ name: "domain", in: "path", required: true, schema: { type: "string" } }],
    get: {
      summary: "The domain's access rules (no passwords)",
      responses: { 200: jsonOf("Policy", "The policy"), ...errors },
    },
    put: {
      summary: "Replace the domain's access rules (basic auth, IP allow/deny, rate limit, header rules)",
      requestBody: { required: true, content: { "application/json": { schema: ref("PolicyInput") } } },
      responses: { 200: jsonOf("Policy", "Stored"), ...errors, 413: jsonOf("Error", "Body over 64 KB") },
    },
    delete: {
      summary: "Remove the domain's access rules",
      responses: { 204: { description: "Removed" }, ...errors },
    },
  },
};

export const policySchemas = { Policy: policy, PolicyInput: policyInput };
