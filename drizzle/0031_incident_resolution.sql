ALTER TABLE "incidents" ADD COLUMN "outcome" text;--> statement-breakpoint
ALTER TABLE "incidents" ADD COLUMN "outcome_reason" text;--> statement-breakpoint
ALTER TABLE "incidents" ADD COLUMN "resolved_by" text;--> statement-breakpoint
ALTER TABLE "incidents" ADD COLUMN "resolved_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "incidents" ADD CONSTRAINT "incidents_resolved_by_principals_id_fk" FOREIGN KEY ("resolved_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;