CREATE TABLE "domain_policies" (
	"domain" varchar(253) PRIMARY KEY NOT NULL,
	"policy" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "domain_policies" ADD CONSTRAINT "domain_policies_domain_domains_domain_fk" FOREIGN KEY ("domain") REFERENCES "public"."domains"("domain") ON DELETE cascade ON UPDATE no action;