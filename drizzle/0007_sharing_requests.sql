CREATE TABLE "sharing_requests" (
	"id" text PRIMARY KEY NOT NULL,
	"requester_institution_id" text NOT NULL,
	"requested_by" text NOT NULL,
	"dataset_id" text NOT NULL,
	"columns" jsonb,
	"duty" text NOT NULL,
	"scenario" text NOT NULL,
	"sharing_type" text NOT NULL,
	"status" text NOT NULL,
	"due_on" text NOT NULL,
	"deadline_provisional" boolean NOT NULL,
	"source_decision" text,
	"source_decided_by" text,
	"committee_decision" text,
	"committee_decided_by" text,
	"refusal_reason" text,
	"refusal_legal_basis" text,
	"answered_on" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sharing_requests" ADD CONSTRAINT "sharing_requests_requester_institution_id_institutions_id_fk" FOREIGN KEY ("requester_institution_id") REFERENCES "public"."institutions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_requests" ADD CONSTRAINT "sharing_requests_requested_by_principals_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sharing_requests" ADD CONSTRAINT "sharing_requests_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "sharing_requests_dataset_idx" ON "sharing_requests" USING btree ("dataset_id");--> statement-breakpoint
CREATE INDEX "sharing_requests_requester_idx" ON "sharing_requests" USING btree ("requester_institution_id");