CREATE TABLE "external_requests" (
	"id" text PRIMARY KEY NOT NULL,
	"requester" text NOT NULL,
	"scenario" text NOT NULL,
	"items" jsonb NOT NULL,
	"safeguards" text NOT NULL,
	"status" text NOT NULL,
	"recorded_by" text NOT NULL,
	"decided_by" text,
	"decision_reason" text,
	"decided_at" timestamp with time zone,
	"deliveries" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "external_requests_created_idx" ON "external_requests" USING btree ("created_at");