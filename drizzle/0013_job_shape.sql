ALTER TABLE "jobs" ADD COLUMN "sql_shape" text;--> statement-breakpoint
CREATE INDEX "jobs_operator_shape_idx" ON "jobs" USING btree ("operator_id","sql_shape","created_at");