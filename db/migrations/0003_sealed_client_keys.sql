ALTER TABLE "domains" ALTER COLUMN "client_api_key" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "client_key_hash" varchar(64);--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "client_key_sealed" text;--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_client_key_hash_unique" UNIQUE("client_key_hash");