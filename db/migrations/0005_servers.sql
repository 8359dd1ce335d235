CREATE TABLE "servers" (
	"id" varchar(64) PRIMARY KEY NOT NULL,
	"addresses" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" varchar(64) DEFAULT '' NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_heartbeat" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"id" varchar(64) PRIMARY KEY NOT NULL,
	"server_id" varchar(64) NOT NULL,
	"domain" varchar(253) NOT NULL,
	"carrier" varchar(16) DEFAULT 'udp' NOT NULL,
	"remote_address" varchar(128) NOT NULL,
	"connected_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "sessions_domain_idx" ON "sessions" USING btree ("domain");--> statement-breakpoint
CREATE INDEX "sessions_server_id_idx" ON "sessions" USING btree ("server_id");