/**
 * GET /servers: the live servers sharing this database (heartbeat within the liveness window),
 * mounted inside the admin API (same authentication). Its OpenAPI paths and schema are exported
 * for the document.
 */
import { Hono } from "hono";

/** A live server as the admin API shows it. */
export interface ServerSummary {
  id: string;
  addresses: Record<string, string>;
  version: string;
  started_at: string;
  last_heartbeat: string;
  /** True for the server answering this request. */
  self: boolean;
}

export interface ServersRoutesOptions {
  /** The live servers. */
  servers(): Promise<ServerSummary[]>;
}

/** The routes, relative to the admin API root. */
export function createServersRoutes(options: ServersRoutesOptions): Hono {
  const app = new Hono();
  app.get("/servers", async (c) => c.json({ servers: await options.servers() }));
  return app;
}

export const serverSchema = {
  type: "object",
  required: ["id", "addresses", "started_at", "last_heartbeat", "self"],
  properties: {
    id: { type: "string" },
    addresses: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "Listeners as host:port: http, https, dtls",
    },
    version: { type: "string" },
    started_at: { type: "string", format: "date-time" },
    last_heartbeat: { type: "string", format: "date-time" },
    self: { type: "boolean", description: "The server that answered" },
  },
};

export const serversPaths = {
  "/servers": {
    get: {
      summary: "Live servers sharing this server's database (heartbeat within the last 12 s)",
      responses: {
        200: {
          description: "The servers, oldest first",
          content: {
            "application/json": {
              schema: {
                type: "object",
                properties: { servers: { type: "array", items: { $ref: "#/components/schemas/Server" } } },
              },
            },
          },
        },
        401: {
          description: "Missing or wrong admin API key",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
        },
      },
    },
  },
};
