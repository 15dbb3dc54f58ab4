CREATE TABLE "public_interest_grants" (
	"consumer_id" text PRIMARY KEY NOT NULL,
	"basis" text NOT NULL,
	"granted_by" text NOT NULL,
	"granted_at" timestamp with time zone NOT NULL,
	"valid_until" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "public_interest_grants" ADD CONSTRAINT "public_interest_grants_consumer_id_principals_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;