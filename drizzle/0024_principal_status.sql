ALTER TABLE "principals" ADD COLUMN "status_reason" text;--> statement-breakpoint
ALTER TABLE "principals" ADD COLUMN "tokens_not_before" timestamp with time zone;