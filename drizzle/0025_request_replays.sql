CREATE TABLE "request_replays" (
	"principal_id" text NOT NULL,
	"idempotency_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text NOT NULL,
	"status" integer,
	"body" text,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "request_replays_principal_id_idempotency_key_pk" PRIMARY KEY("principal_id","idempotency_key")
);
--> statement-breakpoint
CREATE INDEX "request_replays_expiry_idx" ON "request_replays" USING btree ("expires_at");