CREATE TABLE "derived_datasets" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"dataset_id" text NOT NULL,
	"entry" jsonb NOT NULL,
	"status" text NOT NULL,
	"proposed_by" text NOT NULL,
	"decided_by" text,
	"decision_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "derived_datasets" ADD CONSTRAINT "derived_datasets_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "derived_datasets_job_idx" ON "derived_datasets" USING btree ("job_id");