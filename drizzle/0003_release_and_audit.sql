CREATE TABLE "audit_checkpoints" (
	"tree_size" bigint PRIMARY KEY NOT NULL,
	"root_hash" text NOT NULL,
	"timestamp" text NOT NULL,
	"jws" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_leaves" (
	"leaf_index" bigint PRIMARY KEY NOT NULL,
	"leaf_hash" text NOT NULL,
	"leaf" text NOT NULL,
	"event_type" text NOT NULL,
	"operator_id" text,
	"job_id" text,
	"datasets" jsonb,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reviews" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"reviewer_id" text NOT NULL,
	"decision" text NOT NULL,
	"reason" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "reviewers_required" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "receipt" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "release_leaf_index" bigint;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "released_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_reviewer_id_principals_id_fk" FOREIGN KEY ("reviewer_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_leaves_type_idx" ON "audit_leaves" USING btree ("event_type","leaf_index");--> statement-breakpoint
CREATE INDEX "audit_leaves_operator_idx" ON "audit_leaves" USING btree ("operator_id","leaf_index");--> statement-breakpoint
CREATE INDEX "audit_leaves_job_idx" ON "audit_leaves" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "reviews_job_reviewer_idx" ON "reviews" USING btree ("job_id","reviewer_id");--> statement-breakpoint
-- The audit log is append-only in the database too: an UPDATE or DELETE of a leaf fails. (Someone with the power
-- to drop this trigger can still rewrite rows; the Merkle tree and the signed checkpoints make that detectable.)
CREATE OR REPLACE FUNCTION audit_leaves_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_leaves is append-only';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER audit_leaves_no_rewrite BEFORE UPDATE OR DELETE ON audit_leaves FOR EACH ROW EXECUTE FUNCTION audit_leaves_append_only();
