CREATE TABLE "catalogue_revisions" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_id" text NOT NULL,
	"revision" integer NOT NULL,
	"status" text NOT NULL,
	"entry" jsonb NOT NULL,
	"diff" jsonb NOT NULL,
	"note" text,
	"proposed_by" text NOT NULL,
	"reviewed_by" text,
	"review_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "channel_pulls" (
	"id" text PRIMARY KEY NOT NULL,
	"channel_id" text NOT NULL,
	"principal_id" text NOT NULL,
	"columns" jsonb NOT NULL,
	"version_id" text,
	"row_count" bigint,
	"outcome" text NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "disputes" (
	"id" text PRIMARY KEY NOT NULL,
	"raiser_institution_id" text NOT NULL,
	"raised_by" text NOT NULL,
	"dataset_id" text NOT NULL,
	"column_name" text,
	"record_reference" text,
	"description" text NOT NULL,
	"status" text NOT NULL,
	"due_on" text NOT NULL,
	"deadline_provisional" boolean NOT NULL,
	"answer" text,
	"corrected_version_id" text,
	"answered_by" text,
	"answered_on" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "quality_checks" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_id" text NOT NULL,
	"version_id" text NOT NULL,
	"version_number" integer NOT NULL,
	"score" double precision,
	"passed" boolean NOT NULL,
	"results" jsonb NOT NULL,
	"checked_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "registrations" (
	"id" text PRIMARY KEY NOT NULL,
	"institution_id" text NOT NULL,
	"submitted_by" text NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"content" jsonb NOT NULL,
	"findings" jsonb NOT NULL,
	"status" text NOT NULL,
	"submission" integer NOT NULL,
	"return_reasons" jsonb,
	"reviewed_by" text,
	"filing_number" text,
	"filed_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sharing_channels" (
	"id" text PRIMARY KEY NOT NULL,
	"request_id" text NOT NULL,
	"institution_id" text NOT NULL,
	"dataset_id" text NOT NULL,
	"columns" jsonb NOT NULL,
	"purpose" text NOT NULL,
	"pulls_per_day" integer NOT NULL,
	"status" text NOT NULL,
	"status_reason" text,
	"last_used_at" timestamp with time zone NOT NULL,
	"status_changed_at" timestamp with time zone NOT NULL,
	"opened_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "datasets" ADD COLUMN "quality_rules" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "catalogue_revisions" ADD CONSTRAINT "catalogue_revisions_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "channel_pulls" ADD CONSTRAINT "channel_pulls_channel_id_sharing_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."sharing_channels"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "disputes" ADD CONSTRAINT "disputes_raiser_institution_id_institutions_id_fk" FOREIGN KEY ("raiser_institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "disputes" ADD CONSTRAINT "disputes_raised_by_principals_id_fk" FOREIGN KEY ("raised_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "disputes" ADD CONSTRAINT "disputes_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "disputes" ADD CONSTRAINT "disputes_corrected_version_id_dataset_versions_id_fk" FOREIGN KEY ("corrected_version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "quality_checks" ADD CONSTRAINT "quality_checks_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "quality_checks" ADD CONSTRAINT "quality_checks_version_id_dataset_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "registrations" ADD CONSTRAINT "registrations_institution_id_institutions_id_fk" FOREIGN KEY ("institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_channels" ADD CONSTRAINT "sharing_channels_request_id_sharing_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."sharing_requests"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_channels" ADD CONSTRAINT "sharing_channels_institution_id_institutions_id_fk" FOREIGN KEY ("institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_channels" ADD CONSTRAINT "sharing_channels_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "catalogue_revisions_number_idx" ON "catalogue_revisions" USING btree ("dataset_id","revision");--> statement-breakpoint
CREATE INDEX "channel_pulls_channel_idx" ON "channel_pulls" USING btree ("channel_id","at");--> statement-breakpoint
CREATE INDEX "disputes_dataset_idx" ON "disputes" USING btree ("dataset_id");--> statement-breakpoint
CREATE UNIQUE INDEX "quality_checks_version_idx" ON "quality_checks" USING btree ("version_id");--> statement-breakpoint
CREATE INDEX "quality_checks_dataset_idx" ON "quality_checks" USING btree ("dataset_id");--> statement-breakpoint
CREATE INDEX "registrations_institution_idx" ON "registrations" USING btree ("institution_id");--> statement-breakpoint
CREATE UNIQUE INDEX "registrations_filing_idx" ON "registrations" USING btree ("filing_number");--> statement-breakpoint
CREATE UNIQUE INDEX "sharing_channels_request_idx" ON "sharing_channels" USING btree ("request_id");--> statement-breakpoint
CREATE INDEX "sharing_channels_institution_idx" ON "sharing_channels" USING btree ("institution_id");