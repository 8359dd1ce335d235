CREATE TABLE "acme_challenges" (
	"token" varchar(255) PRIMARY KEY NOT NULL,
	"key_authorization" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
