ALTER TABLE "licences" ADD COLUMN "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "licences" ADD COLUMN "request_hash" text;--> statement-breakpoint
CREATE UNIQUE INDEX "licences_idempotency_idx" ON "licences" USING btree ("created_by","idempotency_key");